// Pipeline parallelism: the executor of a parallel::pipeline_schedule action list. This
// rank holds one stage: a contiguous range of layers, or under the interleaved schedule v
// chunks (virtual stages c·p + s); the embeddings feed the first stage's chunk 0, ln_f and
// the tied head follow the last stage's last chunk. Activations [B,T,C] go forward and their gradients
// back over the pp group; every maximal run of consecutive sends and receives is issued as
// one Communicator::exchange and completed before the next compute, the rule under which
// the schedules cannot deadlock (pipeline_schedule.h).
//
// A stage's forward of micro-batch i through chunk c keeps the received activation (a leaf
// that requires grad) and its output until the backward of (i, c): received gradient in,
// the input's gradient out. The last stage's loss is summed over the pp group, so every stage reports it.
#pragma once

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "parallel/pipeline_schedule.h"
#include "train/schedule.h"

namespace ternion::train {

class PipelineSchedule final : public Schedule {
 public:
  // gpt: this stage's shard; pp: the pipeline group (rank = stage). They and the sampler
  // outlive the schedule.
  PipelineSchedule(parallel::Schedule kind, const model::Gpt& gpt, data::BatchSampler& sampler,
                   parallel::Communicator& pp, int64_t micro_batch_size);
  double run(const StepWork& work, GradSync& sync) override;
  double evaluate(data::BatchSampler& val, int64_t batches, const StepWork& work,
                  parallel::Communicator& dp) override;

  // The most micro-batches whose activations this stage held at once in the last step.
  int peak_held() const { return peak_held_; }
  double idle_fraction() const override { return idle_fraction_; }

 private:
  struct InFlight {
    Tensor input;      // received activation (leaf) or, on the first stage, undefined
    Tensor output;     // this stage's output [B,T,C], or the loss on the last stage
    Tensor grad_in;    // received gradient of `output`
    // Its own token ids and targets: the graph keeps them for the backward (embedding,
    // cross-entropy), which runs after later micro-batches were read.
    std::unique_ptr<BatchBuffer> batch;
  };
  Tensor activation_buffer() const;
  // Forward of micro-batch `mb` through `chunk`: from the data (virtual stage 0) or the
  // received activation.
  void forward(const StepWork& w, int mb, int chunk, InFlight& f, double& loss_sum);
  void backward(const StepWork& w, int chunk, InFlight& f, bool last, GradSync& sync);
  bool first_virtual(int chunk) const;  // virtual stage 0: reads the data
  bool last_virtual(int chunk) const;   // the last virtual stage: computes the loss

  parallel::Schedule kind_;
  const model::Gpt& gpt_;
  data::BatchSampler& sampler_;
  parallel::Communicator& pp_;
  BatchBuffer buf_;
  int peak_held_ = 0;
  double compute_s_ = 0;       // forward and backward time in the current run()
  double idle_fraction_ = 0;
};

}  // namespace ternion::train

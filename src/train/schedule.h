// Part of the step: the micro-batch schedule. It runs the forward and backward of every
// micro-batch of this rank's part of a step's global batch and calls the gradient
// synchronisation around each backward. Today: each micro-batch in turn on a whole model
// (SequentialSchedule); pipeline schedules (GPipe, 1F1B) plug in here.
#pragma once

#include <cstdint>
#include <memory>

#include "data/sampler.h"
#include "model/gpt.h"
#include "parallel/context.h"
#include "train/config.h"
#include "train/grad_sync.h"

namespace ternion::train {

// A micro-batch: the sampler fills the host tensors, upload() copies them to the device
// the model runs on (the same tensors when that is the CPU). The copy is synchronous:
// B·T·8 bytes, 128 KiB for GPT-2 at B=16, against tens of milliseconds of compute.
class BatchBuffer {
 public:
  BatchBuffer(int64_t rows, int64_t T, Device device);
  void upload();
  Tensor idx, tgt;          // [B,T] host
  Tensor dev_idx, dev_tgt;  // [B,T] on the model's device
};

// This rank's share of one step.
struct StepWork {
  int64_t step = 0;
  int64_t first_sample = 0;      // global index (in the step's batch) of this rank's first sample
  int64_t micro_batches = 1;
  int64_t micro_batch_size = 1;
  double loss_scale = 1;         // backward runs on loss · loss_scale / micro_batches
  uint64_t dropout_key = 0;
};

class Schedule {
 public:
  virtual ~Schedule() = default;
  // Forward and backward of every micro-batch; gradients accumulate into .grad and are
  // synchronised by `sync`. Returns the mean loss over this dp rank's micro-batches
  // (the same on every stage of a pipeline).
  virtual double run(const StepWork& work, GradSync& sync) = 0;
  // Mean validation loss over global batches 0..batches-1 of `val` (a sampler of the
  // training's global batch size, not shuffled), each split over the dp ranks and into
  // micro-batches as `work` splits a training batch, so the figure does not depend on the
  // layout. No dropout, no graph. Collective over `dp` (and the pipeline).
  virtual double evaluate(data::BatchSampler& val, int64_t batches, const StepWork& work,
                          parallel::Communicator& dp) = 0;
  // The share of the last run() this rank spent outside forward and backward compute
  // (waiting on its pipeline neighbours, communicating): the measured pipeline bubble.
  // 0 without a pipeline.
  virtual double idle_fraction() const { return 0; }
};

// Micro-batch i covers global samples [first_sample + i·B, +B): forward, then backward.
class SequentialSchedule final : public Schedule {
 public:
  // REQUIRES: gpt holds the whole model. The sampler and model outlive the schedule.
  SequentialSchedule(const model::Gpt& gpt, data::BatchSampler& sampler, int64_t micro_batch_size);
  double run(const StepWork& work, GradSync& sync) override;
  double evaluate(data::BatchSampler& val, int64_t batches, const StepWork& work,
                  parallel::Communicator& dp) override;

 private:
  const model::Gpt& gpt_;
  data::BatchSampler& sampler_;
  BatchBuffer buf_;
};

// The schedule `config` asks for on this rank: SequentialSchedule when it holds the whole
// model (parallel.pp = 1), PipelineSchedule (pipeline.h) with parallel.pp_schedule otherwise.
std::unique_ptr<Schedule> make_schedule(const Config& config, parallel::ParallelContext& ctx, const model::Gpt& gpt,
                                        data::BatchSampler& sampler);

}  // namespace ternion::train

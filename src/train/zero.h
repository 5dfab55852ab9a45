// Part of the step: ZeRO (Rajbhandari et al., SC 2020) over the data-parallel group, composed
// with tensor and pipeline parallelism (each dp group shards its own model shard).
//
// The parameters of this rank's model shard live in flat buffers (parallel::FlatBuffers:
// buckets of parallel.bucket_mb in reverse parameter order, padded to a multiple of dp; the
// tied embedding and each region the forward gathers (Gpt::regions) in buckets of their
// own); dp rank r owns range r of every bucket, and the optimizer sees only the pieces of
// parameters in its ranges (ParamRef with an explicit shard gradient), so AdamW's moments
// exist for the shard alone.
//
//   stage 1: full gradients accumulate in the flat gradient buffers through every
//            micro-batch; during the last backward each bucket, once complete, is
//            reduce-scattered (averaged) into this rank's range; after the update every
//            bucket's parameters are all-gathered from the ranks' updated ranges.
//   stage 2: as 1, but every micro-batch's backward reduce-scatters each bucket as it
//            completes and adds the result into a shard-sized gradient; a bucket's full
//            gradient buffer exists only from its region's backward until its
//            reduce-scatter has finished. At most two reduce-scatters are in flight (a
//            third bucket's launch waits for the oldest), and a backward's are finished
//            when its last bucket is launched, so full gradients never exceed a few buckets.
//   stage 3: as 2, and parameters exist only as the f32 master shard; a region's buckets
//            are all-gathered right before its forward (and again before its backward, or
//            its recomputation) and released after it, the next region's gather started
//            meanwhile (prefetch). Nothing is all-gathered after the update. Under bf16 or
//            fp16 precision the gather moves 16-bit copies of the master shard (half the
//            bytes) and widens them into the f32 buffer the model reads: the same values the
//            model's own cast to 16 bits produces, so the forward and backward see the bits
//            they would see without ZeRO.
//
// Then, on the shard: the sequence-parallel parameters' gradients summed over tp and the
// tied embedding's over the embedding group (its bucket is alike on both stages). The
// global norm is the optimizer's, with dp added to the groups it sums over.
#pragma once

#include <memory>
#include <vector>

#include "model/gpt.h"
#include "optim/adamw.h"
#include "parallel/context.h"
#include "parallel/flat_layout.h"
#include "train/config.h"
#include "train/grad_sync.h"

namespace ternion::train {

// How ZeRO buckets gpt's parameters (FlatLayout's groups): the parameters of each region in
// buckets of their own, the tied embedding alone. A pure function of the shard, shared with
// the planner (train/plan.h).
std::vector<int> zero_bucket_groups(const model::Gpt& gpt);
// parallel.bucket_mb in f32 elements (at least 1).
int64_t zero_bucket_elements(const Config& config);

class ZeroSync final : public GradSync, private model::ParameterHooks {
 public:
  // Moves gpt's parameters into flat buffers (their current values kept) and installs the
  // model's parameter hooks (stages 2 and 3). gpt and ctx must outlive this object.
  ZeroSync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt);
  ~ZeroSync() override;
  ZeroSync(const ZeroSync&) = delete;
  ZeroSync& operator=(const ZeroSync&) = delete;

  int stage() const { return stage_; }

  void begin_step(int64_t step) override { step_ = step; }
  void begin_backward(bool last) override;
  void finish() override;
  double wait_ms() const override { return wait_ms_; }
  // PowerSGD, from its start step: every stage keeps the full gradients of the step's
  // micro-batches (no reduce-scatter), compresses them in finish(), and each rank keeps its
  // range of the decompressed average (stages 2 and 3 then free the full buffers). The
  // compressor needs the accumulated gradient, and its error feedback holds one full-size
  // error per compressed matrix anyway, so stage 2's gradient saving does not survive it;
  // stage 3 still shards the parameters.
  parallel::PowerSgd* powersgd() override { return powersgd_.get(); }

  // Before a step's first backward (instead of autograd::zero_grad).
  void zero_grads();
  // After the optimizer's step: stages 1 and 2 all-gather the updated ranges.
  void after_update();
  // Stage 3: every parameter gathered and kept so from now on (the end of training: hashes,
  // model.h5). A no-op below stage 3.
  void gather_all();

  // This rank's pieces of the parameters, in bucket order: what the optimizer updates. The
  // optimizer's state i belongs to piece i.
  struct Piece {
    int param = 0;             // index in gpt.parameters()
    int bucket = 0;
    int64_t param_offset = 0;  // flat offset in the parameter's local tensor
    int64_t numel = 0;
  };
  const std::vector<Piece>& pieces() const { return pieces_; }
  std::vector<optim::ParamRef> param_refs() const;
  // Piece i's values: a view of the flat parameter buffer (stages 1, 2) or of the master shard (3).
  Tensor piece_values(size_t i) const;

  // memory.json: bytes of parameters (flat buffers, or the master shard at stage 3) and of
  // the gradients kept between steps (the flat gradient buffers at stage 1, the shard
  // gradients at 2 and 3).
  int64_t param_bytes() const;
  int64_t grad_bytes() const;
  const parallel::FlatLayout& layout() const { return buffers_->layout(); }

 private:
  struct Bucket;
  void before_forward(int region) override;
  void after_forward(int region) override;
  void before_backward(int region) override;

  void on_grad_ready(int param);
  void launch_ready();
  void launch(int b);
  void complete(int b);          // waits for bucket b's reduce-scatter and consumes it
  void poll();                   // completes what has finished, in order
  void ensure_grads(int b);      // stage >= 2: b's full gradient buffer exists and is zero
  void start_gather(int b);      // stage 3
  void wait_gather(int b);       // stage 3: b's started gather done and in the f32 buffer
  void ensure_gathered(int b);   // stage 3
  void release_params(int b);    // stage 3
  void prefetch(int region);
  void sum_over_tp_and_tied();

  int stage_;
  parallel::ParallelContext& ctx_;
  model::Gpt& gpt_;
  std::unique_ptr<parallel::FlatBuffers> buffers_;
  std::vector<Bucket> buckets_;
  std::vector<std::vector<int>> region_buckets_;
  std::vector<Piece> pieces_;
  std::vector<Tensor> tp_summed_grads_;  // shard gradient pieces summed over tp (views)
  int tied_bucket_ = -1;               // the tied embedding's bucket when the embedding group spans stages
  bool compressing() const { return powersgd_ && step_ >= powersgd_start_; }
  std::unique_ptr<parallel::PowerSgd> powersgd_;
  int64_t powersgd_start_ = 0, step_ = 0;
  bool prefetch_ = true;               // parallel.zero_prefetch
  DType gather_dtype_ = DType::f32;    // stage 3's gathers: 16-bit under bf16 and fp16 precision
  bool last_ = true;
  bool pinned_ = false;                // gather_all() was called
  int next_launch_ = 0;
  std::vector<int> in_flight_;         // launched, not yet consumed, in launch order
  static constexpr int kMaxInFlight = 2;  // stages 2, 3: reduce-scatters in flight at once
  int launched_in_backward_ = 0;       // stages 2, 3: buckets launched in this backward
  double wait_ms_ = 0;
};

}  // namespace ternion::train

// The single-process training loop: data, model, AdamW, schedule, clipping, gradient
// accumulation, evaluation, console log and metrics.jsonl. Later layers (data parallel,
// checkpoints) wrap the same step. The model, gradients and optimizer state live on the
// context's device (ctx.device: a GPU per rank under MPI when CUDA is available); batches
// are copied there per micro-batch; `precision` picks fp32 or bf16 mixed precision
// (train/precision.h).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "parallel/context.h"
#include "parallel/topology.h"
#include "train/config.h"

namespace ternion::train {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0;      // mean cross-entropy over the step's global batch, before the update
  double lr = 0;
  double grad_norm = 0;  // before clipping
  double ms = 0;
  double tokens_per_sec = 0;
  double mfu = 0;         // fraction of peak_flops
  double val_loss = -1;   // < 0: not evaluated at this step
  double ckpt_block_ms = -1;  // a save started at this step: time the step loop was blocked
  double ckpt_total_ms = -1;  // a save committed at this step: its time from start to commit
  double comm_ms = 0;         // time the step waited on the gradient all-reduce (data parallel)
  // Loss scaling (precision: fp16): the scale this step's backward used (0: no scaling),
  // whether the update was skipped for inf/nan gradients, and the run's skipped steps so far.
  double loss_scale = 0;
  bool skipped = false;
  int64_t skipped_steps = 0;
};

struct TrainOptions {
  // "auto": resume from run.dir's newest complete checkpoint when there is one, skipping
  // damaged ones with a warning; "none": start fresh; otherwise a checkpoint directory,
  // which must load without error.
  std::string resume = "auto";
  // > 0: end the run after this step (counted from the start of training, not of this
  // run), with a checkpoint saved and committed at it, as a preempted job does.
  int64_t stop_at_step = 0;
  // Called after every step (logged or not) with its metrics and the bytes of tensor memory
  // in use; monitoring (the /metrics endpoint) hangs off it. Runs on the training thread.
  std::function<void(const StepMetrics&, size_t memory_bytes)> on_step;
};

struct TrainSummary {
  int64_t start_step = 0;           // > 0 when resumed
  bool stopped = false;             // ended before train.steps, with a checkpoint committed
  bool preempted = false;           // ... because of SIGUSR1 or SIGTERM
  std::vector<StepMetrics> steps;  // every step run by this call
  double final_val_loss = -1;
  std::string weights_path;  // the final weights, in the init_from format
};

// Resolves parallel.* against the world size and checks what the layout demands of the
// model and batch: world divisible by tp·pp, dp·tp·pp == world, n_head divisible by tp,
// n_layer divisible by pp, global batch divisible by micro batch × dp. Throws one Error
// listing every broken rule with its keys and values. Runs on every rank before any
// communicator exists.
parallel::Layout resolve_layout(const Config& config, int world_size);

// XXH64 of the resolved config (to_yaml): every rank must train the same config.
uint64_t config_hash(const Config& config);

// Runs `config` to completion. SIGUSR1 or SIGTERM (preemption) ends the run at the next
// step boundary with a checkpoint committed (summary.preempted). Log lines go to `log`; metrics.jsonl and model.h5 go to
// run.dir. Throws Error (naming the key, file or value) on bad input before training.
// With a parallel context (built from resolve_layout's layout), trains data-parallel:
// each dp rank computes its contiguous part of every global batch and gradients are
// averaged over the dp group; only rank 0 writes the log, metrics.jsonl and model.h5.
// Without one, trains in this process alone.
TrainSummary train(const Config& config, std::ostream& log, const TrainOptions& options = {},
                   parallel::ParallelContext* ctx = nullptr);

}  // namespace ternion::train

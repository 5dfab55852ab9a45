// The training loop: a short loop over the parts of a step, each in its own file with a
// test beside it: the model shard (model_shard.h), the micro-batch schedule (schedule.h),
// gradient synchronisation (grad_sync.h), the global norm, clipping and the optimizer
// step (update.h), metrics and logging (metrics.h), checkpoints and preemption
// (step_checkpoints.h, train_state.h). The model, gradients and optimizer state live on
// the context's device (ctx.device: a GPU per rank under MPI when CUDA is available);
// `precision` picks fp32, bf16 or fp16 mixed precision (train/precision.h).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "parallel/context.h"
#include "parallel/topology.h"
#include "train/config.h"
#include "train/metrics.h"

namespace ternion::train {

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
  // Where rank 0 writes warnings (a damaged checkpoint skipped, a resume onto other data);
  // nullptr: standard error.
  std::ostream* warnings = nullptr;
};

struct TrainSummary {
  int64_t start_step = 0;           // > 0 when resumed
  int64_t resume_bytes_read = 0;    // tensor bytes this rank read from the checkpoint it resumed
  bool stopped = false;             // ended before train.steps, with a checkpoint committed
  bool preempted = false;           // ... because of SIGUSR1 or SIGTERM
  std::vector<StepMetrics> steps;  // every step run by this call
  double final_val_loss = -1;
  std::string weights_path;  // the final weights, in the init_from format
  MemoryEntry memory;        // this rank's memory.json entry
  // XXH64 of each parameter tensor this rank holds at the end (f32 bytes), by name: two
  // ranks holding the same part (dp replicas, the tied embedding's copies) compare equal.
  std::map<std::string, uint64_t> param_hashes;
};

// Resolves parallel.* against the world size and checks what the layout demands of the
// model and batch: world divisible by tp·pp, dp·tp·pp == world, n_head divisible by tp,
// n_layer divisible by pp, global batch divisible by micro batch × dp, vocab_size >= tp,
// block_size divisible by tp with parallel.sequence_parallel. Throws one Error
// listing every broken rule with its keys and values. Runs on every rank before any
// communicator exists.
parallel::Layout resolve_layout(const Config& config, int world_size);

// XXH64 of the resolved config (to_yaml): every rank must train the same config.
uint64_t config_hash(const Config& config);

// Runs `config` to completion. SIGUSR1, SIGTERM or a first SIGINT (preemption) ends the
// run at the next step boundary with a checkpoint committed (summary.preempted). World
// rank 0 holds run.dir's lock for the run (run_lock.h): a second run there stops at once. Log lines go to `log`;
// metrics.jsonl, memory.json (every rank's entry, at the end of the run) and model.h5 go
// to run.dir. Throws Error (naming the key, file or value) on bad input before training.
// With a parallel context (built from resolve_layout's layout), trains data-parallel:
// each dp rank computes its contiguous part of every global batch and gradients are
// averaged over the dp group; only rank 0 writes the log, metrics.jsonl and model.h5.
// Without one, trains in this process alone.
TrainSummary train(const Config& config, std::ostream& log, const TrainOptions& options = {},
                   parallel::ParallelContext* ctx = nullptr);

}  // namespace ternion::train

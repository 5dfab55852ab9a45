// Part of the step: what a step measured, and how it is written. metrics.jsonl holds one
// JSON object per logged step; run.dir/memory.json one entry per rank at the end of the
// run. Both are read by tools: their field names and meanings are a contract
// (docs/metrics.md) that changes only by adding fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "parallel/context.h"

namespace ternion::train {

// Bytes this rank sent on each axis during one step, counted in the communicator by the
// nccl-tests convention (parallel::Communicator::bytes_sent). pp includes the embedding
// group (the tied head's gradient).
struct CommBytes {
  int64_t dp = 0, tp = 0, pp = 0;
};

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
  double ckpt_wait_ms = -1;   // the first update after an async save: time it waited for the save's copy
  double ckpt_total_ms = -1;  // a save committed at this step: its time from start to commit
  double comm_ms = 0;         // time the step waited on the gradient all-reduce (data parallel)
  // Loss scaling (precision: fp16): the scale this step's backward used (0: no scaling),
  // whether the update was skipped for inf/nan gradients, and the run's skipped steps so far.
  double loss_scale = 0;
  bool skipped = false;
  int64_t skipped_steps = 0;
  CommBytes comm_bytes;   // this rank's bytes sent during the step, per axis
  size_t mem_bytes = 0;   // tensor bytes allocated at the end of the step
  size_t mem_peak = 0;    // the allocator's peak allocated bytes during the step
  // Pipeline stages only (< 0 otherwise): the share of the step's forward-backward
  // schedule this rank spent outside compute, i.e. its measured bubble.
  double pp_idle = -1;
  // Tensor parallelism only (< 0 otherwise): milliseconds of the step this rank spent inside
  // the tp group's collectives (parallel::Communicator::blocking_seconds), forward,
  // backward and the gradient norm's sum.
  double tp_comm_ms = -1;
};

// Counts each axis's bytes from one step boundary to the next.
class CommMeter {
 public:
  explicit CommMeter(const parallel::ParallelContext& ctx);
  CommBytes total() const;  // since the context was created
  // Bytes since the previous call (or construction), and restarts the count; *tp_ms (when
  // given) receives the milliseconds spent in tp collectives over the same span.
  CommBytes lap(double* tp_ms = nullptr);

 private:
  const parallel::ParallelContext& ctx_;
  CommBytes last_;
  double last_tp_s_ = 0;
};

// One metrics.jsonl line (with the newline): valid JSON, a non-finite number as null.
std::string metrics_json(const StepMetrics& m);
// The console line of a step ("step    10/100 | loss 3.1416 | ...").
struct LogLineOptions {
  int64_t total_steps = 0;
  bool show_comm = false;        // dp > 1: the all-reduce wait
  bool loss_scaling = false;
  double loss_scale_now = 0;     // after this step's update
};
std::string log_line(const StepMetrics& m, const LogLineOptions& o);

// One rank's memory at the end of a run (memory.json), bytes.
struct MemoryEntry {
  int rank = 0;
  parallel::Coord coord;
  int64_t params = 0;            // parameter tensors this rank holds
  int64_t grads = 0;             // their gradients
  int64_t optim = 0;             // optimizer state (AdamW moments)
  int64_t activations_peak = 0;  // most bytes held by saved activations during a step
  int64_t peak = 0;              // the allocator's peak allocated bytes during the run
};
std::string memory_entry_json(const MemoryEntry& e);
// memory.json: {"ranks": [entries in rank order]} from each rank's memory_entry_json.
std::string memory_json(const std::vector<std::string>& entries);

// A finite double as JSON, or null.
std::string json_number(double v);

}  // namespace ternion::train

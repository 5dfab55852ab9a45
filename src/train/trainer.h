// The single-process training loop: data, model, AdamW, schedule, clipping, gradient
// accumulation, evaluation, console log and metrics.jsonl. Later layers (data parallel,
// checkpoints) wrap the same step.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

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
};

struct TrainSummary {
  std::vector<StepMetrics> steps;  // every step
  double final_val_loss = -1;
  std::string weights_path;  // the final weights, in the init_from format
};

// Runs `config` to completion. Log lines go to `log`; metrics.jsonl and model.h5 go to
// run.dir. Throws Error (naming the key, file or value) on bad input before training.
TrainSummary train(const Config& config, std::ostream& log);

}  // namespace ternion::train

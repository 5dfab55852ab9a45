// Part of the step: from synchronised gradients to updated parameters. Unscales them
// (fp16 loss scaling), takes the global norm (over the groups that split the model, each
// replicated or tied parameter once) and clips, decides whether the step is skipped
// (inf/nan under loss scaling; every rank sees the same norm, so the same decision), and
// runs AdamW. Without loss scaling a non-finite norm applies nothing (nonfinite).
#pragma once

#include <functional>
#include <vector>

#include "optim/adamw.h"
#include "optim/grad_scaler.h"
#include "train/config.h"
#include "train/precision.h"

namespace ternion::train {

struct UpdateResult {
  double grad_norm = 0;   // before clipping
  double loss_scale = 0;  // the scale the step's backward used; 0 without loss scaling
  bool skipped = false;
  int64_t skipped_steps = 0;
  // Without loss scaling, a gradient norm that is not finite: no update was applied and
  // the run must stop (the trainer says so, with the step).
  bool nonfinite = false;
};

// Whether every element of every parameter is finite (f64 sums of squares on the device).
bool parameters_finite(const std::vector<optim::ParamRef>& params);

class OptimizerStep {
 public:
  // sum_over_groups adds the other ranks' sums of squares to this rank's (global norm);
  // empty: this rank holds the whole model.
  OptimizerStep(std::vector<optim::ParamRef> params, const OptimConfig& config, const Precision& precision,
                std::function<double(double)> sum_over_groups);

  // The loss multiplier for this step's backward (1 without loss scaling).
  double loss_scale() const { return scaler_.scale(); }
  UpdateResult apply(double lr);

  optim::AdamW& adamw() { return adamw_; }
  const optim::AdamW& adamw() const { return adamw_; }
  optim::GradScaler& scaler() { return scaler_; }
  const optim::GradScaler& scaler() const { return scaler_; }
  const std::vector<optim::ParamRef>& params() const { return params_; }

 private:
  std::vector<optim::ParamRef> params_;
  double grad_clip_;
  std::function<double(double)> sum_over_groups_;
  optim::AdamW adamw_;
  optim::GradScaler scaler_;
};

}  // namespace ternion::train

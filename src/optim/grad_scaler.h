// Dynamic loss scaling for fp16 mixed precision, with the semantics of PyTorch's
// torch.amp.GradScaler: the loss is multiplied by `scale` before backward so small
// gradients survive f16; the gradients are divided by it again before clipping and the
// update; a step whose gradients hold inf or NaN is skipped and the scale halved; after
// `growth_interval` good steps in a row the scale doubles.
//
//   loss_scaled = loss * scale                       (backward of loss_scaled)
//   unscale(params):  g <- g * (1 / scale)           (overwrite, on the grads' device)
//   norm = clip_grad_norm(params, max)               (f64 sum of squares: inf/NaN iff any
//                                                     gradient element is inf/NaN)
//   if update(norm): optimizer.step()                (false: skip this step)
//
// Disabled (fp32, bf16): scale 1, unscale does nothing, and update() only counts.
#pragma once

#include <cstdint>
#include <vector>

#include "optim/adamw.h"

namespace ternion::optim {

struct GradScalerOptions {
  bool enabled = false;
  double init_scale = 65536.0;  // 2^16, PyTorch's default
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // good steps before the scale grows
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  bool enabled() const { return opt_.enabled; }
  // The factor to multiply the loss by before backward (1 when disabled).
  double scale() const { return opt_.enabled ? scale_ : 1.0; }
  // Divides every defined gradient by scale() in place.
  void unscale(const std::vector<ParamRef>& params) const;
  // Takes the global gradient norm of the unscaled gradients. Returns whether the step
  // should be applied: false when enabled and the norm is not finite, in which case the
  // scale is multiplied by backoff_factor; true otherwise, growing the scale after
  // growth_interval consecutive good steps. Disabled scalers always return true.
  bool update(double grad_norm);

  int64_t skipped_steps() const { return skipped_; }  // since construction (or set_state)
  int64_t good_steps() const { return good_; }        // consecutive, toward the next growth

  // For checkpoints and tests.
  void set_state(double scale, int64_t good_steps, int64_t skipped_steps);

 private:
  GradScalerOptions opt_;
  double scale_;
  int64_t good_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace ternion::optim

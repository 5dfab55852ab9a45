#include "optim/grad_scaler.h"

#include <cmath>

#include "autograd/autograd.h"
#include "kernels/kernels.h"

namespace ternion::optim {

GradScaler::GradScaler(GradScalerOptions options) : opt_(options), scale_(options.init_scale) {
  TN_CHECK(opt_.init_scale > 0 && std::isfinite(opt_.init_scale), "grad_scaler",
           "init_scale must be positive and finite, got ", opt_.init_scale);
  TN_CHECK(opt_.growth_factor > 1, "grad_scaler", "growth_factor must be > 1, got ", opt_.growth_factor);
  TN_CHECK(opt_.backoff_factor > 0 && opt_.backoff_factor < 1, "grad_scaler",
           "backoff_factor must be in (0, 1), got ", opt_.backoff_factor);
  TN_CHECK(opt_.growth_interval > 0, "grad_scaler", "growth_interval must be positive, got ",
           opt_.growth_interval);
}

void GradScaler::unscale(const std::vector<ParamRef>& params) const {
  if (!opt_.enabled) return;
  const double inv = 1.0 / scale_;
  for (const ParamRef& p : params) {
    Tensor g = grad_of(p);
    if (g.defined()) TN_KERNEL(axpby, g.device(), inv, g, 0.0, Tensor(), g);
  }
}

bool GradScaler::update(double grad_norm) {
  if (!opt_.enabled) return true;
  if (!std::isfinite(grad_norm)) {
    scale_ *= opt_.backoff_factor;
    good_ = 0;
    ++skipped_;
    return false;
  }
  if (++good_ == opt_.growth_interval) {
    const double grown = scale_ * opt_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;  // PyTorch keeps the scale finite too
    good_ = 0;
  }
  return true;
}

void GradScaler::set_state(double scale, int64_t good_steps, int64_t skipped_steps) {
  TN_CHECK(scale > 0 && std::isfinite(scale), "grad_scaler", "scale must be positive and finite, got ", scale);
  scale_ = scale;
  good_ = good_steps;
  skipped_ = skipped_steps;
}

}  // namespace ternion::optim

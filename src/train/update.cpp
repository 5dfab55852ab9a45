#include "train/update.h"

#include <cmath>

#include "kernels/kernels.h"

namespace ternion::train {

OptimizerStep::OptimizerStep(std::vector<optim::ParamRef> params, const OptimConfig& c, const Precision& precision,
                             std::function<double(double)> sum_over_groups)
    : params_(params),
      grad_clip_(c.grad_clip),
      sum_over_groups_(std::move(sum_over_groups)),
      adamw_(std::move(params), {c.beta1, c.beta2, c.eps, c.weight_decay}),
      scaler_(grad_scaler_options(precision)) {}

UpdateResult OptimizerStep::apply(double lr) {
  UpdateResult r;
  if (scaler_.enabled()) r.loss_scale = scaler_.scale();
  scaler_.unscale(params_);
  r.grad_norm = optim::clip_grad_norm(params_, grad_clip_, sum_over_groups_);
  if (!scaler_.enabled() && !std::isfinite(r.grad_norm)) {
    r.nonfinite = true;
    return r;
  }
  r.skipped = !scaler_.update(r.grad_norm);
  r.skipped_steps = scaler_.skipped_steps();
  if (!r.skipped) adamw_.step(lr);
  return r;
}

bool parameters_finite(const std::vector<optim::ParamRef>& params) {
  double total = 0;
  for (const optim::ParamRef& p : params) {
    Tensor out = Tensor::empty({}, DType::f64, p.param.device());
    TN_KERNEL(sum_squares, p.param.device(), p.param, out);
    total += out.item();
  }
  return std::isfinite(total);
}

}  // namespace ternion::train

#include "optim/adamw.h"

#include <cmath>

#include "autograd/autograd.h"
#include "kernels/kernels.h"

namespace ternion::optim {

Tensor grad_of(const ParamRef& p) { return p.grad.defined() ? p.grad : autograd::grad(p.param); }

AdamW::AdamW(std::vector<ParamRef> params, AdamWOptions options)
    : params_(std::move(params)), opt_(options) {
  for (const ParamRef& p : params_) {
    state_.push_back({Tensor::zeros(p.param.shape(), p.param.dtype(), p.param.device()),
                      Tensor::zeros(p.param.shape(), p.param.dtype(), p.param.device())});
  }
}

void AdamW::step(double lr) {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(params_[i]);
    if (!g.defined()) continue;
    Tensor& p = params_[i].param;
    TN_KERNEL(adamw, p.device(), p, g, state_[i].m, state_[i].v, lr, opt_.beta1, opt_.beta2,
              opt_.eps, params_[i].weight_decay ? opt_.weight_decay : 0.0, step_);
  }
}

double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm,
                      const std::function<double(double)>& sum_over_groups) {
  double total = 0;
  Tensor out = Tensor::empty({}, DType::f64);
  for (const ParamRef& p : params) {
    Tensor g = grad_of(p);
    if (!g.defined() || !p.primary) continue;
    Tensor o = out.to(g.device());
    TN_KERNEL(sum_squares, g.device(), g, o);
    total += o.item();
  }
  if (sum_over_groups) total = sum_over_groups(total);
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double coef = max_norm / (norm + 1e-6);
    for (const ParamRef& p : params) {
      Tensor g = grad_of(p);
      if (g.defined()) TN_KERNEL(axpby, g.device(), coef, g, 0.0, Tensor(), g);
    }
  }
  return norm;
}

double learning_rate(int64_t step, int64_t total_steps, int64_t warmup_steps, double lr,
                     double min_lr, const std::string& schedule) {
  if (step < warmup_steps)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps + 1);
  if (schedule == "constant") return lr;
  TN_CHECK(schedule == "cosine", "optim", "unknown optim.schedule '", schedule, "'");
  if (step >= total_steps) return min_lr;
  const double ratio = static_cast<double>(step - warmup_steps) /
                       static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return min_lr + coeff * (lr - min_lr);
}

}  // namespace ternion::optim

// AdamW with PyTorch's semantics (torch.optim.AdamW, foreach=False): decoupled weight
// decay p -= lr·wd·p on parameters marked for decay, bias-corrected moments, eps added
// outside the square root. Plus global-norm clipping as torch.nn.utils.clip_grad_norm_
// and nanoGPT's learning-rate schedule.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ternion::optim {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// One parameter as the optimizer sees it. `grad` is read from autograd at step().
struct ParamRef {
  ParamRef() = default;
  ParamRef(std::string n, Tensor p, bool decay = false, bool is_primary = true, Tensor g = {})
      : name(std::move(n)), param(std::move(p)), weight_decay(decay), primary(is_primary), grad(std::move(g)) {}
  std::string name;
  Tensor param;
  bool weight_decay = false;
  // Counted in the global gradient norm. False for a copy another rank counts: a tied
  // copy (the head's wte on the last pipeline stage), a tp-replicated parameter on tp
  // ranks other than 0 (model::Parameter::primary).
  bool primary = true;
  // When defined, the gradient to use instead of param's .grad: ZeRO's optimizer works on
  // pieces of a flat shard, plain tensors whose gradients live in the shard's buffer.
  Tensor grad;
};

// p.grad when defined, else the parameter's .grad (undefined when it has none).
Tensor grad_of(const ParamRef& p);

class AdamW {
 public:
  AdamW(std::vector<ParamRef> params, AdamWOptions options);

  // One update with learning rate `lr` from the current .grad of each parameter.
  // Parameters without a gradient are skipped (as PyTorch does).
  void step(double lr);
  int64_t steps() const { return step_; }

  // State for checkpoints: first and second moments per parameter, in params order.
  struct State {
    Tensor m, v;
  };
  std::vector<State>& state() { return state_; }
  const std::vector<ParamRef>& params() const { return params_; }
  void set_steps(int64_t s) { step_ = s; }

 private:
  std::vector<ParamRef> params_;
  std::vector<State> state_;
  AdamWOptions opt_;
  int64_t step_ = 0;
};

// Global L2 norm of the gradients (accumulated in f64), then, when max_norm > 0 and the
// norm exceeds it, every gradient scaled by max_norm / (norm + 1e-6). Returns the norm
// before clipping. The sum of squares covers the primary parameters of this rank, then
// `sum_over_groups` (when given) adds the other ranks' sums: with the model split over
// tp and pp it all-reduces over those groups, so every rank gets the norm of the whole
// model with each replicated or tied parameter counted once.
double clip_grad_norm(const std::vector<ParamRef>& params, double max_norm,
                      const std::function<double(double)>& sum_over_groups = {});

// nanoGPT's schedule: linear warmup lr·(step+1)/(warmup+1) for step < warmup, then cosine
// from lr down to min_lr at `total_steps` ("cosine"), or lr held ("constant").
double learning_rate(int64_t step, int64_t total_steps, int64_t warmup_steps, double lr,
                     double min_lr, const std::string& schedule);

}  // namespace ternion::optim

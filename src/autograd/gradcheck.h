// Finite-difference gradient check in f64: the oracle every op's backward is held to.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::autograd {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string first_failure;  // "input 1 element 7: analytic 0.1 numeric 0.2"
};

// f: inputs -> scalar. Every f64 input that requires grad is checked element by element:
// the gradient from backward against (f(x+eps) - f(x-eps)) / 2eps; an element passes
// when |analytic - numeric| <= atol + rtol * |numeric|.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-7,
                          double rtol = 1e-5);

}  // namespace ternion::autograd

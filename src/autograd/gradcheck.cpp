#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/autograd.h"

namespace ternion::autograd {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          std::vector<Tensor> inputs, double eps, double atol, double rtol) {
  for (Tensor& t : inputs) zero_grad(t);
  Tensor out = f(inputs);
  TN_CHECK(out.numel() == 1, "gradcheck", "f must return a scalar, got ", out.str());
  backward(out);
  GradcheckResult res;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!requires_grad(x)) continue;
    TN_CHECK(x.dtype() == DType::f64 && x.is_contiguous(), "gradcheck",
             "inputs that require grad must be contiguous f64, got ", x.str());
    Tensor g = grad(x);
    std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* p = x.data<double>();
    NoGrad no_grad;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = p[j];
      p[j] = orig + eps;
      const double up = f(inputs).item();
      p[j] = orig - eps;
      const double down = f(inputs).item();
      p[j] = orig;
      const double numeric = (up - down) / (2 * eps);
      const double err = std::abs(analytic[j] - numeric);
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (err > atol + rtol * std::abs(numeric) && res.ok) {
        res.ok = false;
        res.first_failure = str_cat("input ", i, " element ", j, ": analytic ", analytic[j],
                                    " numeric ", numeric);
      }
    }
  }
  return res;
}

}  // namespace ternion::autograd

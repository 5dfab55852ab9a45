// AdamW update and squared-norm reduction for the optimizer step.
//
// adamw (in place, per element, computed in the parameter's precision with the bias
// corrections in f64), following torch.optim.AdamW's single-tensor path:
//   p  = p - lr*wd*p
//   m  = b1*m + (1-b1)*g
//   v  = b2*v + (1-b2)*g*g
//   p  = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc1 = 1-b1^t, bc2 = 1-b2^t
// sum_squares: out (f64 scalar) = sum g^2 in fixed blocks, so the result does not depend
// on the number of threads.
#include <cmath>
#include <vector>

#include "kernels/kernels.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
void adamw_impl(T* p, const T* g, T* m, T* v, int64_t n, double lr, double b1, double b2,
                double eps, double wd, int64_t step) {
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  const T step_size = static_cast<T>(lr / bc1), bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T decay = static_cast<T>(1.0 - lr * wd), tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2);
  const T ob1 = static_cast<T>(1.0 - b1), ob2 = static_cast<T>(1.0 - b2), teps = static_cast<T>(eps);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = tb1 * m[i] + ob1 * gi;
    const T vi = tb2 * v[i] + ob2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) / bc2_sqrt + teps);
  }
}

template <typename T>
double sum_squares_impl(const T* a, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(nb));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    double s = 0;
    for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i)
      s += static_cast<double>(a[i]) * static_cast<double>(a[i]);
    partial[b] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

void adamw(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
           double eps, double weight_decay, int64_t step) {
  TN_CHECK(step >= 1, "adamw", "step must be >= 1, got ", step);
  TN_CHECK(p.shape() == g.shape() && p.shape() == m.shape() && p.shape() == v.shape(), "adamw",
           "shapes differ: p ", p.str(), " g ", g.str(), " m ", m.str(), " v ", v.str());
  TN_CHECK(p.dtype() == g.dtype() && p.dtype() == m.dtype() && p.dtype() == v.dtype(), "adamw",
           "dtypes differ: p ", p.str(), " g ", g.str());
  if (p.dtype() == DType::f32) {
    adamw_impl(p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(), p.numel(), lr,
               beta1, beta2, eps, weight_decay, step);
  } else if (p.dtype() == DType::f64) {
    adamw_impl(p.data<double>(), g.data<double>(), m.data<double>(), v.data<double>(), p.numel(),
               lr, beta1, beta2, eps, weight_decay, step);
  } else {
    fail("adamw", str_cat("unsupported dtype ", p.str()));
  }
}

void sum_squares(const Tensor& a, Tensor& out) {
  TN_CHECK(out.dtype() == DType::f64 && out.numel() == 1, "sum_squares",
           "output must be an f64 scalar, got ", out.str());
  double s = 0;
  if (a.dtype() == DType::f32) s = sum_squares_impl(a.data<float>(), a.numel());
  else if (a.dtype() == DType::f64) s = sum_squares_impl(a.data<double>(), a.numel());
  else fail("sum_squares", str_cat("unsupported dtype ", a.str()));
  *out.data<double>() = s;
}

}  // namespace ternion::kernels::cpu

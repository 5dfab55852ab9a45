// GELU, tanh approximation (Hendrycks & Gimpel), elementwise on any shape:
//   u = s (x + k x^3), s = sqrt(2/pi), k = 0.044715
//   forward:  y = 0.5 x (1 + tanh u) = x * sigma(2u), sigma(z) = 1 / (1 + e^-z)   (overwrite)
//   backward: with q = sigma(2u): 0.5 (1 + tanh u) = q and 0.5 (1 - tanh^2 u) = 2 q (1 - q), so
//             dx = dy * (q + 2 x q (1 - q) s (1 + 3 k x^2))                         (overwrite)
// The sigmoid form needs one exp (vectorised for f32 by detail::exp_f32) instead of a libm
// tanh, and saturates cleanly: e^-2u = inf gives q = 0, never NaN.
// Precision: the dtype of x.
#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
T sigmoid_2u(T x) {
  const T s = static_cast<T>(0.7978845608028654), k = static_cast<T>(0.044715);
  return T(1) / (T(1) + detail::vexp(T(-2) * s * (x + k * x * x * x)));
}

template <typename T>
void forward_impl(const Tensor& x, Tensor& y) {
  const T* px = detail::ptr<T>("gelu_forward", "x", x);
  T* py = detail::ptr<T>("gelu_forward", "y", y);
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = px[i] * sigmoid_2u(px[i]);
}

template <typename T>
void backward_impl(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const T* px = detail::ptr<T>("gelu_backward", "x", x);
  const T* pdy = detail::ptr<T>("gelu_backward", "dy", dy);
  T* pdx = detail::ptr<T>("gelu_backward", "dx", dx);
  const T s = static_cast<T>(0.7978845608028654), k3 = static_cast<T>(3 * 0.044715);
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T v = px[i];
    const T q = sigmoid_2u(v);
    pdx[i] = pdy[i] * (q + T(2) * v * q * (T(1) - q) * s * (T(1) + k3 * v * v));
  }
}

}  // namespace

void gelu_forward(const Tensor& x, Tensor& y) {
  detail::check_numel("gelu_forward", "y", y, x.numel());
  detail::dispatch_float("gelu_forward", x, [&](auto tag) { forward_impl<decltype(tag)>(x, y); });
}

void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  detail::check_numel("gelu_backward", "dy", dy, x.numel());
  detail::check_numel("gelu_backward", "dx", dx, x.numel());
  detail::dispatch_float("gelu_backward", x, [&](auto tag) {
    backward_impl<decltype(tag)>(x, dy, dx);
  });
}

}  // namespace ternion::kernels::cpu

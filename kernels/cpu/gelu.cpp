// GELU, tanh approximation (Hendrycks & Gimpel), elementwise on any shape:
//   u = s (x + 0.044715 x^3), s = sqrt(2/pi)
//   forward:  y = 0.5 x (1 + tanh u)                                        (overwrite)
//   backward: dx = dy * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) s (1 + 3 * 0.044715 x^2))
//             (overwrite)
// Precision: the dtype of x.
#include <cmath>

#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
void forward_impl(const Tensor& x, Tensor& y) {
  const T* px = detail::ptr<T>("gelu_forward", "x", x);
  T* py = detail::ptr<T>("gelu_forward", "y", y);
  const T s = static_cast<T>(0.7978845608028654), k = static_cast<T>(0.044715);
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T v = px[i];
    py[i] = T(0.5) * v * (T(1) + std::tanh(s * (v + k * v * v * v)));
  }
}

template <typename T>
void backward_impl(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const T* px = detail::ptr<T>("gelu_backward", "x", x);
  const T* pdy = detail::ptr<T>("gelu_backward", "dy", dy);
  T* pdx = detail::ptr<T>("gelu_backward", "dx", dx);
  const T s = static_cast<T>(0.7978845608028654), k = static_cast<T>(0.044715);
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T v = px[i];
    const T t = std::tanh(s * (v + k * v * v * v));
    const T grad = T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * s * (T(1) + T(3) * k * v * v);
    pdx[i] = pdy[i] * grad;
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

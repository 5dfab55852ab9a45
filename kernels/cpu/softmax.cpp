// Softmax over the last dim of x[N,C] (any leading shape; C = x.size(-1)).
//   forward:  y[n,c] = exp(x[n,c] - max_c x[n]) / sum_c exp(x[n,c] - max_c x[n])   (overwrite)
//   backward: dx[n,c] = y[n,c] * (dy[n,c] - sum_c dy[n,c] y[n,c])                 (overwrite)
// Precision: exponentials in the dtype of x (f32 through detail::exp_f32, <= 2 ulp), row
// sums in f64. Parallel over rows.
#include <cmath>
#include <limits>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

int64_t last_dim(const Tensor& t) { return t.ndim() ? t.size(-1) : 1; }

template <typename T>
void forward_impl(const Tensor& x, Tensor& y) {
  const T* px = detail::ptr<T>("softmax_forward", "x", x);
  T* py = detail::ptr<T>("softmax_forward", "y", y);
  const int64_t C = last_dim(x);
  const int64_t N = C ? x.numel() / C : 0;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = px + n * C;
    T* yr = py + n * C;
    T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, xr[c]);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = detail::vexp(xr[c] - mx);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(yr[c]);
    const T inv = static_cast<T>(1.0 / s);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] *= inv;
  }
}

template <typename T>
void backward_impl(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const T* py = detail::ptr<T>("softmax_backward", "y", y);
  const T* pdy = detail::ptr<T>("softmax_backward", "dy", dy);
  T* pdx = detail::ptr<T>("softmax_backward", "dx", dx);
  const int64_t C = last_dim(y);
  const int64_t N = C ? y.numel() / C : 0;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* yr = py + n * C;
    const T* dyr = pdy + n * C;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(dyr[c]) * static_cast<double>(yr[c]);
    const T st = static_cast<T>(s);
    T* dxr = pdx + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) dxr[c] = yr[c] * (dyr[c] - st);
  }
}

}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  detail::check_numel("softmax_forward", "y", y, x.numel());
  detail::dispatch_float("softmax_forward", x, [&](auto tag) { forward_impl<decltype(tag)>(x, y); });
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  detail::check_numel("softmax_backward", "dy", dy, y.numel());
  detail::check_numel("softmax_backward", "dx", dx, y.numel());
  detail::dispatch_float("softmax_backward", y, [&](auto tag) {
    backward_impl<decltype(tag)>(y, dy, dx);
  });
}

}  // namespace ternion::kernels::cpu

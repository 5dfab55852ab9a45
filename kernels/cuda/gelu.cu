// GELU, tanh approximation, elementwise on any shape (formulas as kernels/cpu/gelu.cpp):
//   u = s (x + k x^3), s = sqrt(2/pi), k = 0.044715, q = sigma(2u) = 0.5 (1 + tanh u)
//   forward:  y = x q                                                   (overwrite)
//   backward: dx = dy * (q + 2 x q (1 - q) s (1 + 3 k x^2))             (overwrite)
// dtypes: f32, bf16 and f16, computed in f32 (__expf saturates: e^-2u = inf gives q = 0).
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

constexpr float kS = 0.7978845608028654f, kK = 0.044715f;

__device__ __forceinline__ float sigmoid_2u(float x) {
  return 1.f / (1.f + expf(-2.f * kS * (x + kK * x * x * x)));
}

template <typename T>
__global__ void gelu_forward_kernel(const T* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = to_f(x[i]);
    y[i] = from_f<T>(v * sigmoid_2u(v));
  }
}

template <typename T>
__global__ void gelu_backward_kernel(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = to_f(x[i]), q = sigmoid_2u(v);
    const float d = q + 2.f * v * q * (1.f - q) * kS * (1.f + 3.f * kK * v * v);
    dx[i] = from_f<T>(to_f(dy[i]) * d);
  }
}

}  // namespace

void gelu_forward(const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  detail::check_numel("gelu_forward", "y", y, n);
  if (n == 0) return;
  detail::dispatch_compute("gelu_forward", x, [&](auto tag) {
    using T = decltype(tag);
    gelu_forward_kernel<T><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(x)>>>(
        detail::ptr<T>("gelu_forward", "x", x), detail::ptr<T>("gelu_forward", "y", y), n);
    TN_CUDA_CHECK_LAUNCH("gelu_forward");
  });
}

void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t n = x.numel();
  detail::check_numel("gelu_backward", "dy", dy, n);
  detail::check_numel("gelu_backward", "dx", dx, n);
  if (n == 0) return;
  detail::dispatch_compute("gelu_backward", x, [&](auto tag) {
    using T = decltype(tag);
    gelu_backward_kernel<T><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(x)>>>(
        detail::ptr<T>("gelu_backward", "x", x), detail::ptr<T>("gelu_backward", "dy", dy),
        detail::ptr<T>("gelu_backward", "dx", dx), n);
    TN_CUDA_CHECK_LAUNCH("gelu_backward");
  });
}

}  // namespace ternion::kernels::cuda

// Inverted dropout, elementwise on any shape (as kernels/cpu/dropout.cpp):
//   out[i] = keep[i] ? x[i] * scale : 0,  scale = f32(1 / (1 - p)),
//   keep[i] = f64(uniform01(philox4x32(key, stream, offset + i).v[0])) >= p      (overwrite; may alias x)
// The mask is the same pure function of (key, stream, i) as on the CPU (core/rng.h, the same
// Philox code compiled for the device), so CPU and CUDA drop the same elements and f32
// outputs agree bit for bit. p == 1 drops everything without dividing by zero.
// dtypes: f32, bf16 and f16 (16-bit: x * scale in f32, rounded once).
#include "core/rng.h"
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

template <typename T>
__global__ void dropout_kernel(const T* x, T* out, int64_t n, double p, float scale, uint64_t key,
                               uint64_t stream, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float u = uniform01(philox4x32(key, stream, offset + static_cast<uint64_t>(i)).v[0]);
    const bool keep = static_cast<double>(u) >= p;
    out[i] = keep ? detail::from_f<T>(detail::to_f(x[i]) * scale) : detail::from_f<T>(0.f);
  }
}

}  // namespace

void dropout(const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset, Tensor& out) {
  TN_CHECK(p >= 0.0 && p <= 1.0, "dropout", "p must be in [0, 1], got ", p);
  const int64_t n = x.numel();
  detail::check_numel("dropout", "out", out, n);
  if (n == 0) return;
  const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.f;
  detail::dispatch_compute("dropout", x, [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<T><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(x)>>>(
        detail::ptr<T>("dropout", "x", x), detail::ptr<T>("dropout", "out", out), n, p, scale,
        key, stream, offset);
    TN_CUDA_CHECK_LAUNCH("dropout");
  });
}

}  // namespace ternion::kernels::cuda

// Softmax over the last dim of x[N,C] (kernels/cpu/softmax.cpp), one block per row:
//   forward:  y[n,c] = exp(x[n,c] - max_c x[n]) / sum_c exp(x[n,c] - max_c x[n])   (overwrite)
//   backward: dx[n,c] = y[n,c] * (dy[n,c] - sum_c dy[n,c] y[n,c])                 (overwrite)
// dtypes: f32, bf16 and f16; exponentials and row sums in f32. y may alias x, dx may alias dy
// (each element is read before the same thread writes it).
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

template <typename T>
__global__ void softmax_forward_kernel(const T* x, T* y, int64_t C) {
  const T* xr = x + blockIdx.x * C;
  T* yr = y + blockIdx.x * C;
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmaxf(mx, to_f(xr[c]));
  mx = detail::block_max(mx);
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += expf(to_f(xr[c]) - mx);
  const float inv = 1.f / detail::block_sum(s);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = from_f<T>(expf(to_f(xr[c]) - mx) * inv);
}

template <typename T>
__global__ void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t C) {
  const int64_t off = blockIdx.x * C;
  float dot = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += to_f(dy[off + c]) * to_f(y[off + c]);
  dot = detail::block_sum(dot);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float yc = to_f(y[off + c]);
    dx[off + c] = from_f<T>(yc * (to_f(dy[off + c]) - dot));
  }
}

int64_t rows_of(const char* op, const Tensor& x) {
  TN_CHECK(x.ndim() >= 1, op, "expects at least one dim, got ", x.str());
  const int64_t C = x.size(-1);
  const int64_t N = C ? x.numel() / C : 0;
  TN_CHECK(N <= 2147483647, op, "too many rows: ", x.str());
  return N;
}

}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  constexpr const char* op = "softmax_forward";
  detail::check_numel(op, "y", y, x.numel());
  const int64_t N = rows_of(op, x);
  if (N == 0) return;
  detail::dispatch_compute(op, x, [&](auto tag) {
    using T = decltype(tag);
    softmax_forward_kernel<T><<<static_cast<unsigned>(N), detail::kThreads, 0,
                                detail::stream_of(x)>>>(detail::ptr<T>(op, "x", x),
                                                        detail::ptr<T>(op, "y", y), x.size(-1));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  constexpr const char* op = "softmax_backward";
  detail::check_numel(op, "dy", dy, y.numel());
  detail::check_numel(op, "dx", dx, y.numel());
  const int64_t N = rows_of(op, y);
  if (N == 0) return;
  detail::dispatch_compute(op, y, [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_kernel<T><<<static_cast<unsigned>(N), detail::kThreads, 0,
                                 detail::stream_of(y)>>>(
        detail::ptr<T>(op, "y", y), detail::ptr<T>(op, "dy", dy), detail::ptr<T>(op, "dx", dx),
        y.size(-1));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

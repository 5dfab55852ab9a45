// Layer normalisation over the last dim (kernels/cpu/layernorm.cpp):
//   forward:  mean[n] = sum_c x / C, var[n] = sum_c (x - mean)^2 / C (biased, two-pass),
//             rstd[n] = 1 / sqrt(var + eps), y[N,C] = (x - mean) * rstd * w[C] + b[C]
//             (y, mean, rstd overwritten)
//   backward: xhat = (x - mean) * rstd, g = dy * w,
//             dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))      (overwrite)
//             dw[C] += sum_n dy * xhat, db[C] += sum_n dy                (accumulate)
// Layout: one warp per row for the forward and dx; dw/db in two deterministic stages
// (column tiles over row chunks into f32 partials [R, C], then each column adds its R
// partials in order).
// dtypes: x, w, b, y, dy, dx, dw, db share f32, bf16 or f16; mean/rstd are f32 or that dtype.
// All arithmetic in f32.
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

constexpr int kRowsPerBlock = 8;  // warps per block

template <typename T, typename S>
__global__ void ln_forward_kernel(const T* x, const T* w, const T* b, float eps, T* y, S* mean,
                                  S* rstd, int64_t N, int64_t C) {
  const int64_t n = blockIdx.x * int64_t{kRowsPerBlock} + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const T* xr = x + n * C;
  float s = 0.f;
  for (int64_t c = lane; c < C; c += 32) s += to_f(xr[c]);
  const float m = detail::warp_sum(s) / static_cast<float>(C);
  float v = 0.f;
  for (int64_t c = lane; c < C; c += 32) {
    const float d = to_f(xr[c]) - m;
    v += d * d;
  }
  const float r = rsqrtf(detail::warp_sum(v) / static_cast<float>(C) + eps);
  T* yr = y + n * C;
  for (int64_t c = lane; c < C; c += 32) yr[c] = from_f<T>((to_f(xr[c]) - m) * r * to_f(w[c]) + to_f(b[c]));
  if (lane == 0) {
    mean[n] = from_f<S>(m);
    rstd[n] = from_f<S>(r);
  }
}

template <typename T, typename S>
__global__ void ln_backward_dx_kernel(const T* x, const T* w, const S* mean, const S* rstd,
                                      const T* dy, T* dx, int64_t N, int64_t C) {
  const int64_t n = blockIdx.x * int64_t{kRowsPerBlock} + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const T* xr = x + n * C;
  const T* dyr = dy + n * C;
  const float m = to_f(mean[n]), r = to_f(rstd[n]);
  float sg = 0.f, sgx = 0.f;
  for (int64_t c = lane; c < C; c += 32) {
    const float g = to_f(dyr[c]) * to_f(w[c]);
    sg += g;
    sgx += g * (to_f(xr[c]) - m) * r;
  }
  const float a = detail::warp_sum(sg) / static_cast<float>(C);
  const float bx = detail::warp_sum(sgx) / static_cast<float>(C);
  T* dxr = dx + n * C;
  for (int64_t c = lane; c < C; c += 32) {
    const float g = to_f(dyr[c]) * to_f(w[c]);
    const float xhat = (to_f(xr[c]) - m) * r;
    dxr[c] = from_f<T>(r * (g - a - xhat * bx));
  }
}

// Block (32, 8): column bx*32+tx, rows ty, ty+8, ... of row chunk by. part_w/part_b [R, C].
template <typename T, typename S>
__global__ void ln_backward_partial_kernel(const T* x, const S* mean, const S* rstd, const T* dy,
                                           float* part_w, float* part_b, int64_t N, int64_t C,
                                           int64_t rows_per_chunk) {
  __shared__ float sw[8][33], sb[8][33];
  const int64_t c = blockIdx.x * int64_t{32} + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
  float aw = 0.f, ab = 0.f;
  if (c < C) {
    for (int64_t n = r0 + threadIdx.y; n < r1; n += 8) {
      const float d = to_f(dy[n * C + c]);
      aw += d * (to_f(x[n * C + c]) - to_f(mean[n])) * to_f(rstd[n]);
      ab += d;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.f, tb = 0.f;
    for (int j = 0; j < 8; ++j) {
      tw += sw[j][threadIdx.x];
      tb += sb[j][threadIdx.x];
    }
    part_w[blockIdx.y * C + c] = tw;
    part_b[blockIdx.y * C + c] = tb;
  }
}

template <typename T>
__global__ void ln_backward_finish_kernel(const float* part_w, const float* part_b, int64_t R,
                                          int64_t C, T* dw, T* db) {
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < C;
       c += int64_t{gridDim.x} * blockDim.x) {
    float tw = 0.f, tb = 0.f;
    for (int64_t r = 0; r < R; ++r) {
      tw += part_w[r * C + c];
      tb += part_b[r * C + c];
    }
    dw[c] = from_f<T>(to_f(dw[c]) + tw);
    db[c] = from_f<T>(to_f(db[c]) + tb);
  }
}

void check_shapes(const char* op, const Tensor& x, const Tensor& w, const Tensor& mean,
                  const Tensor& rstd) {
  const int64_t C = w.numel(), N = mean.numel();
  TN_CHECK(x.numel() == N * C && rstd.numel() == N, op, "shape mismatch: x ", x.str(), ", w ",
           w.str(), ", mean ", mean.str(), ", rstd ", rstd.str());
  TN_CHECK(mean.dtype() == rstd.dtype() &&
               (mean.dtype() == DType::f32 || mean.dtype() == x.dtype()),
           op, "mean ", mean.str(), " and rstd ", rstd.str(), " must be f32 or the dtype of x ",
           x.str());
}

// Calls f(T{}, S{}) for the (x, mean) dtypes.
template <typename F>
void dispatch_ln(const char* op, const Tensor& x, const Tensor& mean, F&& f) {
  detail::dispatch_compute(op, x, [&](auto t) {
    if (mean.dtype() == DType::f32) f(t, float{});
    else f(t, t);
  });
}

unsigned row_blocks(int64_t N) {
  return static_cast<unsigned>((N + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                       Tensor& mean, Tensor& rstd) {
  constexpr const char* op = "layernorm_forward";
  check_shapes(op, x, w, mean, rstd);
  detail::check_numel(op, "b", b, w.numel());
  detail::check_numel(op, "y", y, x.numel());
  const int64_t N = mean.numel(), C = w.numel();
  if (N == 0 || C == 0) return;
  dispatch_ln(op, x, mean, [&](auto t, auto s) {
    using T = decltype(t);
    using S = decltype(s);
    ln_forward_kernel<T, S><<<row_blocks(N), 32 * kRowsPerBlock, 0, detail::stream_of(x)>>>(
        detail::ptr<T>(op, "x", x), detail::ptr<T>(op, "w", w), detail::ptr<T>(op, "b", b),
        static_cast<float>(eps), detail::ptr<T>(op, "y", y), detail::ptr<S>(op, "mean", mean),
        detail::ptr<S>(op, "rstd", rstd), N, C);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db) {
  constexpr const char* op = "layernorm_backward";
  check_shapes(op, x, w, mean, rstd);
  detail::check_numel(op, "dy", dy, x.numel());
  detail::check_numel(op, "dx", dx, x.numel());
  detail::check_numel(op, "dw", dw, w.numel());
  detail::check_numel(op, "db", db, w.numel());
  const int64_t N = mean.numel(), C = w.numel();
  if (N == 0 || C == 0) return;
  const int64_t R = std::clamp<int64_t>((N + 63) / 64, 1, 256);
  const int64_t rows_per_chunk = (N + R - 1) / R;
  Tensor part = detail::scratch({2, R, C}, DType::f32, x);
  float* part_w = static_cast<float*>(part.raw_data());
  float* part_b = part_w + R * C;
  const cudaStream_t stream = detail::stream_of(x);
  dispatch_ln(op, x, mean, [&](auto t, auto s) {
    using T = decltype(t);
    using S = decltype(s);
    const T* px = detail::ptr<T>(op, "x", x);
    const S* pm = detail::ptr<S>(op, "mean", mean);
    const S* pr = detail::ptr<S>(op, "rstd", rstd);
    const T* pdy = detail::ptr<T>(op, "dy", dy);
    ln_backward_dx_kernel<T, S><<<row_blocks(N), 32 * kRowsPerBlock, 0, stream>>>(
        px, detail::ptr<T>(op, "w", w), pm, pr, pdy, detail::ptr<T>(op, "dx", dx), N, C);
    TN_CUDA_CHECK_LAUNCH(op);
    const dim3 grid(static_cast<unsigned>((C + 31) / 32), static_cast<unsigned>(R));
    ln_backward_partial_kernel<T, S><<<grid, dim3(32, 8), 0, stream>>>(px, pm, pr, pdy, part_w,
                                                                       part_b, N, C,
                                                                       rows_per_chunk);
    TN_CUDA_CHECK_LAUNCH(op);
    ln_backward_finish_kernel<T><<<detail::grid_for(C), detail::kThreads, 0, stream>>>(
        part_w, part_b, R, C, detail::ptr<T>(op, "dw", dw), detail::ptr<T>(op, "db", db));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

// Deterministic two-stage reductions to a scalar, shared by sum_all and sum_squares:
// stage 1 gives each of a fixed number of blocks a grid-stride share and writes one f64
// partial per block; stage 2 (one block) adds the partials. The grid depends only on n,
// so a result depends only on the input. Internal to kernels/cuda.
#pragma once

#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda::detail {

constexpr int kReduceBlocks = 1024;

template <typename T, bool kSquare>
__global__ void reduce_partials(const T* a, int64_t n, double* partial) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const double x = static_cast<double>(to_f(a[i]));
    s += kSquare ? x * x : x;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <typename O>
__global__ void reduce_final(const double* partial, int nparts, double scale, O* out) {
  double s = 0.0;
  for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = static_cast<O>(s * scale);
}

// out (f32 or f64 scalar on the device) = scale * sum a[i] (or a[i]^2), accumulated in f64.
template <typename T, bool kSquare>
void reduce_to_scalar(const char* op, const T* a, int64_t n, Tensor& out, double scale = 1.0) {
  const cudaStream_t stream = stream_of(out);
  const int nparts = static_cast<int>(std::min<int64_t>(kReduceBlocks, grid_for(n)));
  Tensor partial = scratch({nparts}, DType::f64, out);
  double* pp = static_cast<double*>(partial.raw_data());
  if (n == 0) {
    TN_CUDA_CHECK(cudaMemsetAsync(pp, 0, sizeof(double) * nparts, stream));
  } else {
    reduce_partials<T, kSquare><<<nparts, kThreads, 0, stream>>>(a, n, pp);
    TN_CUDA_CHECK_LAUNCH(op);
  }
  if (out.dtype() == DType::f64) {
    reduce_final<double><<<1, 1024, 0, stream>>>(pp, nparts, scale, ptr<double>(op, "out", out));
  } else {
    reduce_final<float><<<1, 1024, 0, stream>>>(pp, nparts, scale, ptr<float>(op, "out", out));
  }
  TN_CUDA_CHECK_LAUNCH(op);
}

}  // namespace ternion::kernels::cuda::detail

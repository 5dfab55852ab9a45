// Helpers shared by the CUDA kernels: dtype dispatch (f32, bf16, f16), checked device
// pointers, conversions, warp/block reductions, launch sizing and the index check that
// embedding and cross-entropy need. Internal to kernels/cuda.
//
// Every kernel runs on the compute stream of its tensors' device (core/cuda_allocator.h),
// uses grid-stride loops or explicit bounds checks, and checks its launch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "core/cuda_allocator.h"
#include "core/cuda_check.h"
#include "kernels/checks.h"
#include "kernels/kernels.h"

namespace ternion::kernels::cuda::detail {

using bf16_t = __nv_bfloat16;
using f16_t = __half;

template <typename T>
constexpr DType dtype_of_t() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, bf16_t>) return DType::bf16;
  else {
    static_assert(std::is_same_v<T, f16_t>, "no DType for this type");
    return DType::f16;
  }
}

// Calls f(T{}) with T = float, bf16_t or f16_t for the dtype of `t`: the compute dtypes of
// every precision mode (src/train/precision.h). 16-bit data is computed in f32 and rounded
// once on the store. Other dtypes throw naming `op`.
template <typename F>
void dispatch_compute(std::string_view op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::bf16: f(bf16_t{}); return;
    case DType::f16: f(f16_t{}); return;
    default: fail(op, str_cat("expects f32, bf16 or f16 on CUDA, got ", t.str()));
  }
}

// Pointer to the data of `t` as T; throws naming `op` and the argument on misuse.
template <typename T>
T* ptr(std::string_view op, std::string_view arg, const Tensor& t) {
  TN_CHECK(t.defined(), op, arg, " is undefined");
  TN_CHECK(t.dtype() == dtype_of_t<T>(), op, arg, " is ", t.str(), ", expected ",
           dtype_name(dtype_of_t<T>()));
  TN_CHECK(t.device().is_cuda(), op, arg, " is ", t.str(), " on ", t.device().str(),
           ", expected a CUDA tensor");
  TN_CHECK(t.numel() == 0 || t.is_contiguous(), op, arg, " ", t.str(), " is not contiguous");
  return t.numel() ? static_cast<T*>(t.raw_data()) : nullptr;
}

using ::ternion::kernels::check_numel;

inline cudaStream_t stream_of(const Tensor& t) { return cuda_compute_stream(t.device().index); }

// Scratch memory from the caching allocator, released when the tensor dies (stream order
// makes the reuse safe).
inline Tensor scratch(const Shape& shape, DType dtype, const Tensor& like) {
  return Tensor::empty(shape, dtype, like.device());
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 65536));
}

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16_t x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(f16_t x) { return __half2float(x); }
// Rounds to nearest even; f16 overflow (|x| >= 65520) becomes inf, which the loss scaler
// of fp16 training looks for.
template <typename T>
__device__ __forceinline__ T from_f(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else if constexpr (std::is_same_v<T, bf16_t>) return __float2bfloat16_rn(x);
  else return __float2half_rn(x);
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// Uses 32 * sizeof(A) bytes of static shared memory; safe to call repeatedly.
template <typename A>
__device__ A block_sum(A v) {
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  A t = lane < nwarps ? partial[lane] : A(0);
  return warp_sum(t);
}

__device__ inline float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? partial[lane] : -INFINITY;
  return warp_max(t);
}

// Throws naming `op` when an entry of idx (i32 or i64, on the device) is outside [0, V).
// Costs one 16-byte device-to-host copy (a sync of the compute stream).
void check_indices(std::string_view op, const Tensor& idx, int64_t V);

// Loads index i of an i32 or i64 tensor.
__device__ __forceinline__ int64_t load_index(const void* p, bool is64, int64_t i) {
  return is64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

}  // namespace ternion::kernels::cuda::detail

// Dtype conversion for mixed precision, elementwise on any shape (as kernels/cpu/cast.cpp):
//   out[i] = convert(x[i])                                                    (overwrite)
// dtypes: f32 <-> bf16 and f32 <-> f16 (and same-dtype copies); conversions go through f32
// and round to nearest even (__float2bfloat16_rn, __float2half_rn); inf and NaN survive,
// and f16 overflow becomes inf, which is what dynamic loss scaling looks for.
#include <cuda_fp16.h>

#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::bf16_t;

__device__ __forceinline__ float load_f(float x) { return x; }
__device__ __forceinline__ float load_f(bf16_t x) { return __bfloat162float(x); }
__device__ __forceinline__ float load_f(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T store_f(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else if constexpr (std::is_same_v<T, bf16_t>) return __float2bfloat16_rn(x);
  else return __float2half_rn(x);
}

template <typename From, typename To>
__global__ void cast_kernel(const From* x, To* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = store_f<To>(load_f(x[i]));
}

// Calls f(T{}) with the CUDA type of a dtype cast converts.
template <typename F>
void dispatch_cast(const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::bf16: f(bf16_t{}); return;
    case DType::f16: f(__half{}); return;
    default: fail("cast", str_cat("converts f32, bf16 and f16 on CUDA, got ", t.str()));
  }
}

void check_operand(const char* arg, const Tensor& t) {
  TN_CHECK(t.device().is_cuda(), "cast", arg, " is ", t.str(), " on ", t.device().str(),
           ", expected a CUDA tensor");
  TN_CHECK(t.numel() == 0 || t.is_contiguous(), "cast", arg, " ", t.str(), " is not contiguous");
}

}  // namespace

void cast(const Tensor& x, Tensor& out) {
  const int64_t n = x.numel();
  detail::check_numel("cast", "out", out, n);
  check_operand("x", x);
  check_operand("out", out);
  TN_CHECK(x.device() == out.device(), "cast", "device mismatch: ", x.str(), " on ", x.device().str(),
           ", out on ", out.device().str());
  if (n == 0) return;
  dispatch_cast(x, [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch_cast(out, [&](auto to_tag) {
      using To = decltype(to_tag);
      cast_kernel<From, To><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(x)>>>(
          static_cast<const From*>(x.raw_data()), static_cast<To*>(out.raw_data()), n);
      TN_CUDA_CHECK_LAUNCH("cast");
    });
  });
}

}  // namespace ternion::kernels::cuda

// The index check of common.cuh: the first offending position wins (atomicMin).
#include <climits>

#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda::detail {

namespace {

__global__ void find_bad_index(const void* idx, bool is64, int64_t n, int64_t V,
                               unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t v = load_index(idx, is64, i);
    if (v < 0 || v >= V) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

}  // namespace

void check_indices(std::string_view op, const Tensor& idx, int64_t V) {
  TN_CHECK(idx.dtype() == DType::i32 || idx.dtype() == DType::i64, op,
           "indices must be i32 or i64, got ", idx.str());
  TN_CHECK(idx.device().is_cuda() && idx.is_contiguous(), op,
           "indices must be a contiguous CUDA tensor, got ", idx.str(), " on ",
           idx.device().str());
  const int64_t n = idx.numel();
  if (n == 0) return;
  const bool is64 = idx.dtype() == DType::i64;
  const cudaStream_t stream = stream_of(idx);
  Tensor flag = scratch({1}, DType::i64, idx);
  auto* pflag = static_cast<unsigned long long*>(flag.raw_data());
  TN_CUDA_CHECK(cudaMemsetAsync(pflag, 0xff, sizeof(unsigned long long), stream));
  find_bad_index<<<grid_for(n), kThreads, 0, stream>>>(idx.raw_data(), is64, n, V, pflag);
  TN_CUDA_CHECK_LAUNCH("find_bad_index");
  unsigned long long bad = 0;
  TN_CUDA_CHECK(cudaMemcpyAsync(&bad, pflag, sizeof bad, cudaMemcpyDeviceToHost, stream));
  TN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad == ULLONG_MAX) return;
  const int64_t pos = static_cast<int64_t>(bad);
  int64_t value = 0;
  if (is64) {
    TN_CUDA_CHECK(cudaMemcpy(&value, static_cast<const int64_t*>(idx.raw_data()) + pos,
                             sizeof value, cudaMemcpyDeviceToHost));
  } else {
    int32_t v32 = 0;
    TN_CUDA_CHECK(cudaMemcpy(&v32, static_cast<const int32_t*>(idx.raw_data()) + pos,
                             sizeof v32, cudaMemcpyDeviceToHost));
    value = v32;
  }
  fail(op, str_cat("index ", value, " at position ", pos, " out of range [0, V=", V, ")"));
}

}  // namespace ternion::kernels::cuda::detail

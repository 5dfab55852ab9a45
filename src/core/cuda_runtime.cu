// CUDA build: the per-device allocators (cuda_allocator.cu) and tensor copies.
// Copies run on the compute stream of the CUDA side, so they are ordered after every
// kernel queued on it, and end with a sync of that stream (the contract is synchronous).
#include <cuda_runtime.h>

#include <array>
#include <mutex>
#include <string>

#include "core/cuda_allocator.h"
#include "core/cuda_check.h"
#include "core/cuda_runtime.h"

namespace ternion {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no GPU: not an error for a CPU run
    return 0;
  }
  return n;
}

bool cuda_available() { return cuda_device_count() > 0; }

cudaStream_t cuda_compute_stream(int) { return cudaStreamLegacy; }

CudaCachingAllocator& cuda_caching_allocator(int index) {
  static std::mutex mu;
  static std::array<CudaCachingAllocator*, 64> allocators{};  // never destroyed: outlive tensors
  TN_CHECK(index >= 0 && index < static_cast<int>(allocators.size()) &&
               index < cuda_device_count(),
           "cuda_allocator", "device cuda:", index, " not visible (", cuda_device_count(),
           " GPUs)");
  std::lock_guard<std::mutex> lock(mu);
  if (!allocators[index]) allocators[index] = new CudaCachingAllocator(index);
  return *allocators[index];
}

Allocator& cuda_allocator(int index) { return cuda_caching_allocator(index); }

void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                     size_t bytes) {
  if (bytes == 0) return;
  const int index = dst_device.is_cuda() ? dst_device.index : src_device.index;
  int prev = 0;
  TN_CUDA_CHECK(cudaGetDevice(&prev));
  TN_CUDA_CHECK(cudaSetDevice(index));
  const cudaStream_t stream = cuda_compute_stream(index);
  cuda_copy_bytes_async(dst, src, bytes, stream);
  const cudaError_t err = cudaStreamSynchronize(stream);
  cudaSetDevice(prev);
  TN_CUDA_CHECK(err);
}

void cuda_zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t stream = cuda_compute_stream(device.index);
  TN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream));
  TN_CUDA_CHECK(cudaStreamSynchronize(stream));
}

const char* cuda_version_string() {
  static const std::string v = [] {
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    return str_cat(rt / 1000, ".", (rt % 1000) / 10);
  }();
  return v.c_str();
}

}  // namespace ternion

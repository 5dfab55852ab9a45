// CUDA build: device allocator (size-class caching over cudaMalloc) and copies.
#include <cuda_runtime.h>

#include <array>
#include <memory>
#include <mutex>

#include "core/cuda_runtime.h"
#include "core/error.h"

#define TN_CUDA_CHECK(call)                                                              \
  do {                                                                                   \
    cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess)                                                             \
      ::ternion::fail("cuda", ::ternion::str_cat(#call, " failed: ", cudaGetErrorString(err_), \
                                             " at ", __FILE__, ":", __LINE__));          \
  } while (0)

namespace ternion {
namespace {

class CudaAllocator final : public CachingAllocator {
 public:
  explicit CudaAllocator(int index) : index_(index) {}
  Device device() const override { return Device::cuda(index_); }

 protected:
  void* system_alloc(size_t bytes) override {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(index_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    cudaSetDevice(prev);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky out-of-memory error
      return nullptr;
    }
    return p;
  }
  void system_free(void* ptr, size_t) override { cudaFree(ptr); }

 private:
  int index_;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool cuda_available() { return cuda_device_count() > 0; }

Allocator& cuda_allocator(int index) {
  static std::mutex mu;
  static std::array<CudaAllocator*, 64> allocators{};  // never destroyed: outlive tensors
  TN_CHECK(index >= 0 && index < cuda_device_count(), "cuda_allocator", "device cuda:", index,
           " not visible (", cuda_device_count(), " GPUs)");
  std::lock_guard<std::mutex> lock(mu);
  if (!allocators[index]) allocators[index] = new CudaAllocator(index);
  return *allocators[index];
}

void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                     size_t bytes) {
  if (bytes == 0) return;
  cudaMemcpyKind kind = cudaMemcpyDefault;
  (void)dst_device;
  (void)src_device;
  TN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void cuda_zero_bytes(void* dst, Device, size_t bytes) {
  if (bytes == 0) return;
  TN_CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

const char* cuda_version_string() {
  static std::string v = [] {
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    return str_cat(rt / 1000, ".", (rt % 1000) / 10);
  }();
  return v.c_str();
}

}  // namespace ternion

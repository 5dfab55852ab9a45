// CUDA build: the per-device allocators (cuda_allocator.cu) and tensor copies.
// Copies run on the compute stream of the CUDA side, so they are ordered after every
// kernel queued on it and before every later one; the host waits only where it needs the
// result (see cuda_runtime.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
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

namespace {

// Makes `index` the current device for the scope (cudaStreamLegacy names the current
// device's legacy stream) and restores the previous one.
class DeviceScope {
 public:
  explicit DeviceScope(int index) {
    TN_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != index) TN_CUDA_CHECK(cudaSetDevice(index));
  }
  ~DeviceScope() { cudaSetDevice(prev_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = 0;
};

// Page-locked (or registered) host memory: an async copy reads it after the call returns.
bool is_pinned_host(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // pageable memory on old runtimes reports an error: not pinned
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

}  // namespace

void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                     size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    // Between two GPUs: neither compute stream orders the other's work, so wait for the
    // source's, copy, and wait again before either device reuses the memory.
    {
      DeviceScope s(src_device.index);
      TN_CUDA_CHECK(cudaStreamSynchronize(cuda_compute_stream(src_device.index)));
    }
    DeviceScope d(dst_device.index);
    const cudaStream_t stream = cuda_compute_stream(dst_device.index);
    cuda_copy_bytes_async(dst, src, bytes, stream);
    TN_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  const int index = dst_device.is_cuda() ? dst_device.index : src_device.index;
  DeviceScope scope(index);
  const cudaStream_t stream = cuda_compute_stream(index);
  cuda_copy_bytes_async(dst, src, bytes, stream);
  // The host waits only when it needs the bytes (device to host) or when the copy would
  // still read host memory after returning (a pinned source; a pageable one is staged by
  // the driver before cudaMemcpyAsync returns). Device to device: stream order only.
  if (dst_device.is_cpu() || (src_device.is_cpu() && is_pinned_host(src))) {
    TN_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
}

void cuda_zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  DeviceScope scope(device.index);
  TN_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, cuda_compute_stream(device.index)));
}

namespace {

constexpr int kMaxDims = 8;
struct Layout {
  int64_t shape[kMaxDims], src[kMaxDims], dst[kMaxDims];
  int nd;
};

// One thread per element: row-major index -> offsets in both layouts.
template <typename T>
__global__ void strided_copy_kernel(T* dst, const T* src, Layout l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t rem = i, so = 0, d = 0;
    for (int k = l.nd - 1; k >= 0; --k) {
      const int64_t c = rem % l.shape[k];
      rem /= l.shape[k];
      so += c * l.src[k];
      d += c * l.dst[k];
    }
    dst[d] = src[so];
  }
}

template <typename T>
void launch_strided(void* dst, const void* src, const Layout& l, int64_t n, cudaStream_t stream) {
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
  strided_copy_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
      static_cast<T*>(dst), static_cast<const T*>(src), l, n);
}

}  // namespace

void cuda_strided_copy(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides,
                       const Shape& shape, size_t elem, Device device) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n == 0) return;
  TN_CHECK(shape.size() <= kMaxDims && dst_strides.size() == shape.size() && src_strides.size() == shape.size(),
           "cuda_strided_copy", "supports up to ", kMaxDims, " dims with matching strides, got ", shape.size());
  Layout l{};
  l.nd = static_cast<int>(shape.size());
  for (int k = 0; k < l.nd; ++k) {
    l.shape[k] = shape[k];
    l.src[k] = src_strides[k];
    l.dst[k] = dst_strides[k];
  }
  TN_CHECK(elem == 1 || elem == 2 || elem == 4 || elem == 8, "cuda_strided_copy", "element size ", elem,
           " unsupported");
  DeviceScope scope(device.index);
  const cudaStream_t stream = cuda_compute_stream(device.index);
  switch (elem) {
    case 1: launch_strided<uint8_t>(dst, src, l, n, stream); break;
    case 2: launch_strided<uint16_t>(dst, src, l, n, stream); break;
    case 4: launch_strided<uint32_t>(dst, src, l, n, stream); break;
    default: launch_strided<uint64_t>(dst, src, l, n, stream); break;
  }
  TN_CUDA_CHECK(cudaGetLastError());  // the launch only: the copy is ordered on the stream
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

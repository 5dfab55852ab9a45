// Stream-ordered caching allocator and pinned buffers (see cuda_allocator.h).
#include "core/cuda_allocator.h"

#include <algorithm>

#include "core/cuda_check.h"

namespace ternion {

namespace {

// Makes `index` the current device for the scope, restoring the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    cudaGetDevice(&prev_);
    if (prev_ != index) cudaSetDevice(index);
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
};

}  // namespace

CudaCachingAllocator::CudaCachingAllocator(int device_index) : index_(device_index) {}

CudaCachingAllocator::~CudaCachingAllocator() {
  // Only reached at process exit in practice (the allocators are leaked on purpose);
  // destructors never throw, so errors are ignored here.
  std::vector<std::pair<void*, size_t>> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Pending& p : pending_) {
      for (cudaEvent_t e : p.events) cudaEventDestroy(e);
      blocks.emplace_back(p.ptr, p.size);
    }
    pending_.clear();
    release_cached_locked(blocks);
    for (cudaEvent_t e : event_pool_) cudaEventDestroy(e);
  }
  for (auto& [ptr, size] : blocks) cudaFree(ptr);
}

void* CudaCachingAllocator::system_alloc(size_t size) {
  DeviceGuard guard(index_);
  void* p = nullptr;
  if (cudaMalloc(&p, size) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls do not see it
    return nullptr;
  }
  return p;
}

void* CudaCachingAllocator::allocate(size_t bytes) {
  return allocate(bytes, cuda_compute_stream(index_));
}

void* CudaCachingAllocator::allocate(size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return nullptr;
  const size_t size = CachingAllocator::round_size(bytes);
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_allocs;
    process_pending_locked();
    auto it = free_.find({stream, size});
    if (it != free_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
    }
  }
  if (!ptr) {
    ptr = system_alloc(size);
    if (!ptr) {
      // Give every cached block back (other streams' included) and try once more.
      TN_CUDA_CHECK(cudaDeviceSynchronize());
      empty_cache();
      ptr = system_alloc(size);
    }
    TN_CHECK(ptr, "allocator", "out of memory allocating ", size, " bytes on ", device().str(),
             " (allocated ", stats().allocated, ", reserved ", stats().reserved, " bytes)");
    std::lock_guard<std::mutex> lock(mu_);
    stats_.reserved += size;
    ++stats_.num_system_allocs;
  }
  std::lock_guard<std::mutex> lock(mu_);
  live_[ptr] = Live{size, bytes, stream, {}};
  stats_.allocated += size;
  stats_.requested += bytes;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return ptr;
}

void CudaCachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  TN_CHECK(it != live_.end(), "allocator", "free of ", ptr, " (", bytes,
           " bytes) that ", device().str(), " did not allocate");
  Live block = std::move(it->second);
  live_.erase(it);
  stats_.allocated -= block.size;
  stats_.requested -= block.requested;
  if (block.uses.empty()) {
    free_[{block.stream, block.size}].push_back(ptr);
    return;
  }
  Pending p{ptr, block.size, block.stream, {}};
  DeviceGuard guard(index_);
  for (cudaStream_t s : block.uses) {
    cudaEvent_t e = nullptr;
    if (!event_pool_.empty()) {
      e = event_pool_.back();
      event_pool_.pop_back();
    } else {
      TN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    }
    TN_CUDA_CHECK(cudaEventRecord(e, s));
    p.events.push_back(e);
  }
  pending_.push_back(std::move(p));
}

void CudaCachingAllocator::record_stream(void* ptr, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  TN_CHECK(it != live_.end(), "allocator", "record_stream on ", ptr, ", not live on ",
           device().str());
  Live& block = it->second;
  if (stream == block.stream) return;
  if (std::find(block.uses.begin(), block.uses.end(), stream) == block.uses.end())
    block.uses.push_back(stream);
}

void CudaCachingAllocator::process_pending_locked() {
  auto done = [&](Pending& p) {
    for (cudaEvent_t e : p.events) {
      const cudaError_t err = cudaEventQuery(e);
      if (err == cudaErrorNotReady) {
        cudaGetLastError();
        return false;
      }
      TN_CUDA_CHECK(err);
    }
    for (cudaEvent_t e : p.events) event_pool_.push_back(e);
    free_[{p.stream, p.size}].push_back(p.ptr);
    return true;
  };
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(), done), pending_.end());
}

void CudaCachingAllocator::release_cached_locked(std::vector<std::pair<void*, size_t>>& out) {
  for (auto& [key, list] : free_) {
    for (void* p : list) out.emplace_back(p, key.second);
    stats_.reserved -= key.second * list.size();
  }
  free_.clear();
}

void CudaCachingAllocator::empty_cache() {
  std::vector<std::pair<void*, size_t>> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    process_pending_locked();
    release_cached_locked(blocks);
  }
  DeviceGuard guard(index_);
  for (auto& [ptr, size] : blocks) TN_CUDA_CHECK(cudaFree(ptr));
}

AllocatorStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CudaCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes) TN_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void cuda_copy_bytes_async(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  TN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
}

}  // namespace ternion

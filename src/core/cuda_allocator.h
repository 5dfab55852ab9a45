// Stream-ordered caching allocator for one CUDA device (CUDA builds only).
//
// Blocks come from cudaMalloc in the size classes of CachingAllocator::round_size and are
// never returned to the driver until empty_cache(). A block belongs to the stream it was
// allocated on; once freed it is reused only by allocations on that same stream, so work
// queued on the stream before the free is ordered before any new use without a host sync.
// A block that another stream also touched (record_stream) is held back after its free
// until an event recorded on each such stream has completed.
//
// Thread safety: every method may be called from any thread.
// Errors: cudaMalloc failure frees the cache and retries once, then throws ternion::Error
// naming the device and the sizes; other CUDA failures throw through TN_CUDA_CHECK.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/allocator.h"

namespace ternion {

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device_index);
  ~CudaCachingAllocator() override;
  CudaCachingAllocator(const CudaCachingAllocator&) = delete;
  CudaCachingAllocator& operator=(const CudaCachingAllocator&) = delete;

  // On the device's compute stream (cuda_compute_stream).
  void* allocate(size_t bytes) override;
  void* allocate(size_t bytes, cudaStream_t stream);
  void deallocate(void* ptr, size_t bytes) override;
  // REQUIRES: ptr is live from this allocator. Work queued on `stream` up to the free must
  // finish before the block is handed out again.
  void record_stream(void* ptr, cudaStream_t stream);

  AllocatorStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;
  Device device() const override { return Device::cuda(index_); }

 private:
  struct Live {
    size_t size;                        // rounded
    size_t requested;
    cudaStream_t stream;                // allocation stream: owns the free list
    std::vector<cudaStream_t> uses;     // other streams (record_stream)
  };
  struct Pending {                      // freed, waiting on other streams' events
    void* ptr;
    size_t size;
    cudaStream_t stream;
    std::vector<cudaEvent_t> events;
  };
  using FreeKey = std::pair<cudaStream_t, size_t>;

  void* system_alloc(size_t size);      // nullptr on out-of-memory
  void process_pending_locked();        // moves completed pending blocks to free_
  void release_cached_locked(std::vector<std::pair<void*, size_t>>& out);

  const int index_;
  mutable std::mutex mu_;
  std::map<FreeKey, std::vector<void*>> free_;
  std::unordered_map<void*, Live> live_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> event_pool_;
  AllocatorStats stats_;
};

// Page-locked host memory for staging and async copies; RAII over cudaMallocHost.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The stream every kernel and tensor copy of `device_index` runs on. Today the legacy
// default stream, so kernels, cudaMemcpy and the allocator are trivially ordered; other
// streams (communication) order themselves with events and record_stream.
cudaStream_t cuda_compute_stream(int device_index);

// The process-wide allocator of cuda:index (same object as cuda_allocator(index)).
CudaCachingAllocator& cuda_caching_allocator(int index);

// Async copy on `stream`: any pair of host/device pointers (cudaMemcpyDefault, UVA). The
// host side must stay alive (and, to overlap, be pinned) until the stream reaches it.
void cuda_copy_bytes_async(void* dst, const void* src, size_t bytes, cudaStream_t stream);

}  // namespace ternion

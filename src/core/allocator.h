// Caching allocators, one per device. Freed blocks are kept in size-class free lists and
// reused, so steady-state training makes no system allocations; statistics let the
// trainer report and later bound memory.
//
// Thread safety: every method may be called from any thread (the checkpoint writer and
// communication threads free buffers too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "core/device.h"

namespace ternion {

struct AllocatorStats {
  size_t allocated = 0;       // bytes in blocks handed out and not yet freed (rounded sizes)
  size_t requested = 0;       // bytes callers asked for, of those blocks
  size_t reserved = 0;        // bytes obtained from the system (allocated + cached)
  size_t peak_allocated = 0;  // high-water mark of `allocated` since the last reset_peak()
  size_t num_allocs = 0;      // allocate() calls
  size_t num_system_allocs = 0;  // of those, how many went to the system
  // Share of reserved memory not in use: 1 - allocated / reserved (0 when nothing reserved).
  double fragmentation() const {
    return reserved ? 1.0 - static_cast<double>(allocated) / static_cast<double>(reserved) : 0.0;
  }
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory for at least `bytes` bytes, aligned to 64 bytes; nullptr for 0 bytes.
  // Throws ternion::Error when the system is out of memory.
  virtual void* allocate(size_t bytes) = 0;
  // REQUIRES: ptr came from allocate(bytes) of this allocator with the same `bytes`.
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached, unused blocks to the system.
  virtual void empty_cache() = 0;
  virtual Device device() const = 0;
};

// Size-class caching over a raw system allocator (malloc for CPU, cudaMalloc for CUDA).
class CachingAllocator : public Allocator {
 public:
  ~CachingAllocator() override;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  AllocatorStats stats() const override;
  void reset_peak() override;
  void empty_cache() override;

  // Size classes: multiples of 512 bytes up to 1 MiB, then powers of two up to 64 MiB,
  // then multiples of 2 MiB.
  static size_t round_size(size_t bytes);

 protected:
  virtual void* system_alloc(size_t bytes) = 0;
  virtual void system_free(void* ptr, size_t bytes) = 0;
  // Subclasses call this from their destructor, when system_free is still callable.
  void release_all();

 private:
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  AllocatorStats stats_;
};

// The process-wide allocator of a device. Throws for CUDA in a build without CUDA.
Allocator& allocator_for(Device device);
Allocator& cpu_allocator();

}  // namespace ternion

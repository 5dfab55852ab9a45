#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace ternion {

CachingAllocator::~CachingAllocator() = default;

size_t CachingAllocator::round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kMid = size_t{1} << 20, kLarge = size_t{64} << 20,
                   kHuge = size_t{2} << 20;
  if (bytes <= kMid) return (bytes + kSmall - 1) / kSmall * kSmall;
  if (bytes <= kLarge) {
    size_t p = kMid;
    while (p < bytes) p <<= 1;
    return p;
  }
  return (bytes + kHuge - 1) / kHuge * kHuge;
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = round_size(bytes);
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_allocs;
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
    }
  }
  if (!ptr) {
    ptr = system_alloc(size);
    if (!ptr) {
      empty_cache();  // give cached blocks back and try once more
      ptr = system_alloc(size);
    }
    TN_CHECK(ptr, "allocator", "out of memory allocating ", size, " bytes on ", device().str(),
             " (reserved ", stats().reserved, " bytes)");
    std::lock_guard<std::mutex> lock(mu_);
    stats_.reserved += size;
    ++stats_.num_system_allocs;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.allocated += size;
  stats_.requested += bytes;
  if (stats_.allocated > stats_.peak_allocated) stats_.peak_allocated = stats_.allocated;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  free_[size].push_back(ptr);
  stats_.allocated -= size;
  stats_.requested -= bytes;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
}

void CachingAllocator::empty_cache() {
  std::map<size_t, std::vector<void*>> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.swap(free_);
    for (auto& [size, list] : blocks) stats_.reserved -= size * list.size();
  }
  for (auto& [size, list] : blocks)
    for (void* p : list) system_free(p, size);
}

void CachingAllocator::release_all() { empty_cache(); }

namespace {

class CpuAllocator final : public CachingAllocator {
 public:
  ~CpuAllocator() override { release_all(); }
  Device device() const override { return Device::cpu(); }

 protected:
  void* system_alloc(size_t bytes) override {
    return std::aligned_alloc(64, bytes);  // bytes is a multiple of 512
  }
  void system_free(void* ptr, size_t) override { std::free(ptr); }
};

}  // namespace

Allocator& cpu_allocator() {
  static CpuAllocator* alloc = new CpuAllocator();  // never destroyed: outlives all tensors
  return *alloc;
}

Allocator& cuda_allocator(int index);  // cuda_allocator.cu or no_cuda.cpp

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  return cuda_allocator(device.index);
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : str_cat("cuda:", index);
}

}  // namespace ternion

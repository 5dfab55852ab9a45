#include "core/allocator.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/tensor.h"

namespace ternion {
namespace {

// A private allocator over malloc, so tests see exact statistics.
class TestAllocator final : public CachingAllocator {
 public:
  ~TestAllocator() override { release_all(); }
  Device device() const override { return Device::cpu(); }
  int system_calls = 0;
  bool fail_next = false;

 protected:
  void* system_alloc(size_t bytes) override {
    ++system_calls;
    if (fail_next) return nullptr;
    return std::aligned_alloc(64, bytes);
  }
  void system_free(void* p, size_t) override { std::free(p); }
};

TEST(Allocator, RoundsToSizeClasses) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size((1 << 20) + 1), 2u << 20);
  EXPECT_EQ(CachingAllocator::round_size((64u << 20) + 1), (66u << 20));
}

TEST(Allocator, CachesAndReusesFreedBlocks) {
  TestAllocator a;
  void* p = a.allocate(1000);
  EXPECT_EQ(a.stats().allocated, 1024u);
  EXPECT_EQ(a.stats().requested, 1000u);
  a.deallocate(p, 1000);
  EXPECT_EQ(a.stats().allocated, 0u);
  EXPECT_EQ(a.stats().reserved, 1024u);
  EXPECT_DOUBLE_EQ(a.stats().fragmentation(), 1.0);
  void* q = a.allocate(900);  // same size class: no system call
  EXPECT_EQ(q, p);
  EXPECT_EQ(a.system_calls, 1);
  EXPECT_EQ(a.stats().num_allocs, 2u);
  EXPECT_EQ(a.stats().num_system_allocs, 1u);
  a.deallocate(q, 900);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
}

TEST(Allocator, TracksPeak) {
  TestAllocator a;
  void* p = a.allocate(4096);
  void* q = a.allocate(4096);
  a.deallocate(p, 4096);
  EXPECT_EQ(a.stats().peak_allocated, 8192u);
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_allocated, 4096u);
  a.deallocate(q, 4096);
  EXPECT_EQ(a.allocate(0), nullptr);
}

TEST(Allocator, OutOfMemoryIsAnError) {
  TestAllocator a;
  a.fail_next = true;
  EXPECT_THROW(a.allocate(100), Error);
}

TEST(Allocator, ThreadSafe) {
  TestAllocator a;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) a.deallocate(a.allocate(512 * (1 + i % 4)), 512 * (1 + i % 4));
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(a.stats().allocated, 0u);
  EXPECT_EQ(a.stats().num_allocs, 8000u);
}

TEST(Allocator, TensorsReturnMemoryToTheCpuAllocator) {
  const size_t before = cpu_allocator().stats().allocated;
  {
    Tensor t = Tensor::empty({1000});
    EXPECT_GE(cpu_allocator().stats().allocated, before + 4000);
  }
  EXPECT_EQ(cpu_allocator().stats().allocated, before);
}

}  // namespace
}  // namespace ternion

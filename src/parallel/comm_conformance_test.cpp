// Every collective of the MPI communicator against a host-computed expectation, for every
// dtype and sizes {0, 1, prime, large}; uneven gathers, async handles, broadcasts from a
// non-zero root, sub-groups, the chunked paths above MPI's int counts, and the same checks
// on CUDA tensors (NCCL) where a GPU is visible. Point-to-point and traffic counting are in
// comm_p2p_test.cpp and comm_bytes_sent_test.cpp; all three make one program that comm.cmake
// runs under mpirun with -np 2, 3 and 4 through the shared MPI test main.
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <numeric>
#include <thread>

#include "parallel/comm_conformance.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {

namespace {

std::unique_ptr<Communicator> g_cuda_world;  // made and dropped by CudaWorld

// Every rank runs this set-up, so making the CUDA world here is collective.
class CudaWorld : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!cuda_available()) return;
    CommOptions options;
    options.device = Device::cuda(testing::runtime().info().local_rank % cuda_device_count());
    g_cuda_world = testing::runtime().world(options);
  }
  void TearDown() override { g_cuda_world.reset(); }
};
::testing::Environment* const kCudaWorld = ::testing::AddGlobalTestEnvironment(new CudaWorld);

Communicator& world() { return testing::world(); }

std::vector<int64_t> sizes(DType d) {
  std::vector<int64_t> s = {0, 1, 1009};
  if (d == DType::f32) s.push_back(1 << 20);
  return s;
}

// NCCL has no 16-bit integer reduction: u16 reduces on host only.
bool reducible(DType d, Device dev) { return dev.is_cpu() || d != DType::u16; }

void check_all_reduce(Communicator& c, Device dev) {
  for (DType d : kDtypes) {
    if (!reducible(d, dev)) continue;
    for (int64_t n : sizes(d)) {
      for (ReduceOp op : kOps) {
        Tensor t = make(values(c.rank(), n), d, dev);
        c.all_reduce(t, op);
        std::vector<double> want(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) want[static_cast<size_t>(i)] = reduce(op, d, c.size(), i);
        expect_close(host(t), want, d, str_cat("all_reduce ", reduce_op_name(op), " n=", n));
      }
    }
  }
}

void check_reduce_scatter(Communicator& c, Device dev) {
  for (DType d : kDtypes) {
    if (!reducible(d, dev)) continue;
    for (int64_t blk : {int64_t{0}, int64_t{1}, int64_t{1009}}) {
      for (ReduceOp op : kOps) {
        Tensor in = make(values(c.rank(), blk * c.size()), d, dev);
        Tensor out = Tensor::zeros({blk}, d, dev);
        c.reduce_scatter(in, out, op);
        std::vector<double> want(static_cast<size_t>(blk));
        for (int64_t i = 0; i < blk; ++i) want[static_cast<size_t>(i)] = reduce(op, d, c.size(), c.rank() * blk + i);
        expect_close(host(out), want, d, str_cat("reduce_scatter ", reduce_op_name(op), " blk=", blk));
      }
    }
  }
}

void check_all_gather(Communicator& c, Device dev) {
  for (DType d : kDtypes) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1009}}) {
      Tensor in = make(values(c.rank(), n), d, dev);
      Tensor out = Tensor::zeros({n * c.size()}, d, dev);
      c.all_gather(in, out);
      std::vector<double> want;
      for (int r = 0; r < c.size(); ++r) {
        const std::vector<double> v = values(r, n);
        want.insert(want.end(), v.begin(), v.end());
      }
      expect_close(host(out), want, d, str_cat("all_gather n=", n));
    }
  }
}

// Uneven, with an empty contribution from group rank 1 and a prime one from the others.
void check_all_gather_v(Communicator& c, Device dev) {
  std::vector<int64_t> counts(static_cast<size_t>(c.size()));
  for (int r = 0; r < c.size(); ++r) counts[static_cast<size_t>(r)] = r == 1 ? 0 : 1009 + r;
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  for (DType d : kDtypes) {
    Tensor in = make(values(c.rank(), counts[static_cast<size_t>(c.rank())]), d, dev);
    Tensor out = Tensor::zeros({total}, d, dev);
    c.all_gather_v(in, out, counts);
    std::vector<double> want;
    for (int r = 0; r < c.size(); ++r) {
      const std::vector<double> v = values(r, counts[static_cast<size_t>(r)]);
      want.insert(want.end(), v.begin(), v.end());
    }
    expect_close(host(out), want, d, "all_gather_v");
  }
}

void check_broadcast(Communicator& c, Device dev) {
  const int root = c.size() - 1;  // not rank 0
  for (DType d : kDtypes) {
    for (int64_t n : sizes(d)) {
      Tensor t = make(values(c.rank(), n), d, dev);
      c.broadcast(t, root);
      expect_close(host(t), values(root, n), d, str_cat("broadcast n=", n));
    }
  }
}

TEST(CommConformance, AllReduce) { check_all_reduce(world(), Device::cpu()); }
TEST(CommConformance, ReduceScatter) { check_reduce_scatter(world(), Device::cpu()); }
TEST(CommConformance, AllGather) { check_all_gather(world(), Device::cpu()); }
TEST(CommConformance, AllGatherVUneven) { check_all_gather_v(world(), Device::cpu()); }
TEST(CommConformance, BroadcastFromLastRank) { check_broadcast(world(), Device::cpu()); }

TEST(CommConformance, AsyncOverlapsAndCompletesInOrder) {
  Communicator& c = world();
  std::vector<Tensor> ts;
  std::vector<std::unique_ptr<Work>> works;
  for (int k = 0; k < 8; ++k) {
    ts.push_back(Tensor::full({(1 << 16) + k}, c.rank() + k));
    works.push_back(c.all_reduce_async(ts.back(), ReduceOp::kSum));
  }
  Tensor in = Tensor::full({4 * c.size()}, 1.0), rs = Tensor::zeros({4});
  auto w_rs = c.reduce_scatter_async(in, rs, ReduceOp::kAvg);
  Tensor g_out = Tensor::zeros({3 * c.size()});
  auto w_ag = c.all_gather_async(Tensor::full({3}, c.rank()), g_out);
  // The communication thread completes the last one without anyone waiting: test()
  // turns true on its own (bounded well inside the world's timeout).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!w_ag->test() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  ASSERT_TRUE(w_ag->test()) << "all_gather_async never completed without wait()";
  // Issue order: everything issued before it is complete too.
  for (auto& w : works) EXPECT_TRUE(w->test()) << "an all_reduce issued earlier is not complete";
  EXPECT_TRUE(w_rs->test()) << "the reduce_scatter issued earlier is not complete";
  for (auto& w : works) w->wait();
  w_rs->wait();
  w_ag->wait();
  EXPECT_TRUE(w_ag->test()) << "test() after wait()";
  const double ranks = c.size() * (c.size() - 1) / 2.0;
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(ts[static_cast<size_t>(k)].to_vector<float>(),
              std::vector<float>(static_cast<size_t>((1 << 16) + k), static_cast<float>(ranks + k * c.size())))
        << "all_reduce_async #" << k;
  }
  EXPECT_EQ(rs.to_vector<float>(), std::vector<float>(4, 1.0f));
  std::vector<float> gathered;
  for (int r = 0; r < c.size(); ++r) gathered.insert(gathered.end(), 3, static_cast<float>(r));
  EXPECT_EQ(g_out.to_vector<float>(), gathered);
  // A Work dropped unfinished completes before its destructor returns.
  Tensor dropped = Tensor::full({1009}, 1.0);
  c.all_reduce_async(dropped, ReduceOp::kSum).reset();
  EXPECT_EQ(dropped.to_vector<float>(), std::vector<float>(1009, static_cast<float>(c.size())));
}

TEST(CommConformance, SubGroupsOfEvenAndOddRanks) {
  Runtime& rt = testing::runtime();
  std::vector<std::vector<int>> parity(2);
  for (int r = 0; r < rt.size(); ++r) parity[static_cast<size_t>(r % 2)].push_back(r);
  auto g = rt.new_group("parity", parity);
  const auto& mine = parity[static_cast<size_t>(rt.rank() % 2)];
  EXPECT_EQ(g->size(), static_cast<int>(mine.size()));
  EXPECT_EQ(g->world_ranks(), mine);
  EXPECT_EQ(g->world_ranks()[static_cast<size_t>(g->rank())], rt.rank());
  EXPECT_DOUBLE_EQ(g->all_reduce_scalar(rt.rank(), ReduceOp::kSum), std::accumulate(mine.begin(), mine.end(), 0.0));
  if (g->size() > 1) {
    check_all_reduce(*g, Device::cpu());
    check_all_gather_v(*g, Device::cpu());
    check_broadcast(*g, Device::cpu());
  }
  world().barrier();
}

TEST(CommConformance, ChunkedAboveTheCountLimit) {
  set_mpi_max_count_for_testing(100);
  check_all_reduce(world(), Device::cpu());
  check_reduce_scatter(world(), Device::cpu());
  check_all_gather(world(), Device::cpu());
  check_all_gather_v(world(), Device::cpu());
  check_broadcast(world(), Device::cpu());
  set_mpi_max_count_for_testing(INT_MAX);
}

TEST(CommConformance, HostHelpers) {
  Communicator& c = world();
  auto s = c.all_gather_strings(std::string(static_cast<size_t>(c.rank()), 'x') + "\xe9");
  ASSERT_EQ(static_cast<int>(s.size()), c.size());
  for (int r = 0; r < c.size(); ++r) EXPECT_EQ(s[static_cast<size_t>(r)], std::string(static_cast<size_t>(r), 'x') + "\xe9");
  EXPECT_TRUE(c.all_true(true));
  EXPECT_FALSE(c.all_true(c.rank() != c.size() - 1));
  EXPECT_DOUBLE_EQ(c.all_reduce_scalar(c.rank(), ReduceOp::kMax), c.size() - 1);
  EXPECT_DOUBLE_EQ(c.all_reduce_scalar(1.5, ReduceOp::kAvg), 1.5);
}

TEST(CommConformance, MisuseThrowsBeforeCommunicating) {
  Tensor t = Tensor::zeros({4});
  Tensor wrong = Tensor::zeros({3});
  EXPECT_THROW(world().all_gather(t, wrong), Error);
  EXPECT_THROW(world().broadcast(t, world().size()), Error);
  EXPECT_THROW(world().send(t, world().rank()), Error);
  EXPECT_THROW(testing::runtime().new_group("bad", {{0}}), Error);  // not a partition
}

// The NCCL backend, where this build has CUDA and the machine a GPU.
class CommCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_world()) GTEST_SKIP() << "no GPU visible";
    dev_ = Device::cuda(testing::runtime().info().local_rank % cuda_device_count());
  }
  Device dev_;
};
TEST_F(CommCuda, AllReduce) { check_all_reduce(*cuda_world(), dev_); }
TEST_F(CommCuda, ReduceScatter) { check_reduce_scatter(*cuda_world(), dev_); }
TEST_F(CommCuda, AllGather) { check_all_gather(*cuda_world(), dev_); }
TEST_F(CommCuda, AllGatherVUneven) { check_all_gather_v(*cuda_world(), dev_); }
TEST_F(CommCuda, Broadcast) { check_broadcast(*cuda_world(), dev_); }
TEST_F(CommCuda, AsyncWaitOrdersTheComputeStream) {
  // A device copy queued right after wait() reads the reduced values: the compute stream
  // waits on the collective's event, with no host synchronisation in between.
  Communicator& c = *cuda_world();
  Tensor t = Tensor::full({1 << 20}, 1.0, DType::f32, dev_);
  auto w = c.all_reduce_async(t, ReduceOp::kSum);
  w->wait();
  Tensor copy = t.clone();
  EXPECT_TRUE(w->test());
  expect_close(host(copy), std::vector<double>(1 << 20, c.size()), DType::f32, "all_reduce_async");
}
TEST_F(CommCuda, HostOnlyGroupRefusesCudaTensors) {
  Tensor t = Tensor::zeros({4}, DType::f32, dev_);
  EXPECT_THROW(world().all_reduce(t, ReduceOp::kSum), Error) << "the world was made for host tensors";
}

}  // namespace

Communicator* cuda_world() { return g_cuda_world.get(); }

}  // namespace ternion::parallel

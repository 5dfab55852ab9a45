// Communicator::bytes_sent under mpirun: every call adds the nccl-tests bus bytes of its
// kind when it is issued (before any wait), async and blocking alike, host helpers
// included; receives and barriers add nothing. The expectations are written out from the
// convention here, independently of the implementation's arithmetic.
#include <gtest/gtest.h>

#include "parallel/comm_conformance.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {
namespace {

// How much bytes_sent() grew during `fn`.
template <typename Fn>
int64_t sent_during(Communicator& c, Fn&& fn) {
  const int64_t before = c.bytes_sent();
  fn();
  return c.bytes_sent() - before;
}

void check_bytes_sent(Communicator& c, Device dev) {
  const int64_t n = c.size();
  constexpr int64_t kElems = 1009;          // f32 elements per rank's block
  const int64_t s = kElems * 4;             // bytes of one block
  // all-reduce of S bytes: 2(n-1)/n·S, rounded down per call.
  Tensor t = Tensor::full({kElems}, 1.0, DType::f32, dev);
  EXPECT_EQ(sent_during(c, [&] { c.all_reduce(t, ReduceOp::kSum); }), 2 * (n - 1) * s / n) << "all_reduce";
  std::unique_ptr<Work> w;
  EXPECT_EQ(sent_during(c, [&] { w = c.all_reduce_async(t, ReduceOp::kAvg); }), 2 * (n - 1) * s / n)
      << "all_reduce_async counts when issued";
  w->wait();
  // all-gather whose full buffer is n·S: (n-1)·S.
  Tensor full = Tensor::zeros({n * kElems}, DType::f32, dev);
  EXPECT_EQ(sent_during(c, [&] { c.all_gather(t, full); }), (n - 1) * s) << "all_gather";
  EXPECT_EQ(sent_during(c, [&] { w = c.all_gather_async(t, full); }), (n - 1) * s) << "all_gather_async";
  w->wait();
  // reduce-scatter of a full buffer of n·S: (n-1)·S.
  EXPECT_EQ(sent_during(c, [&] { c.reduce_scatter(full, t, ReduceOp::kSum); }), (n - 1) * s) << "reduce_scatter";
  EXPECT_EQ(sent_during(c, [&] { w = c.reduce_scatter_async(full, t, ReduceOp::kMax); }), (n - 1) * s)
      << "reduce_scatter_async";
  w->wait();
  // Uneven gather: (n-1)/n of the gathered buffer.
  std::vector<int64_t> counts;
  for (int r = 0; r < n; ++r) counts.push_back(r + 1);
  const int64_t total = n * (n + 1) / 2;
  Tensor mine = Tensor::zeros({c.rank() + 1}, DType::f32, dev), all = Tensor::zeros({total}, DType::f32, dev);
  EXPECT_EQ(sent_during(c, [&] { c.all_gather_v(mine, all, counts); }), (n - 1) * total * 4 / n) << "all_gather_v";
  // broadcast: S on every rank, root or not.
  EXPECT_EQ(sent_during(c, [&] { c.broadcast(t, 0); }), s) << "broadcast";
  // Point to point: a send counts its bytes, a receive nothing; an exchange the sum of its sends.
  const int next = (c.rank() + 1) % c.size(), prev = (c.rank() + c.size() - 1) % c.size();
  Tensor in = Tensor::zeros({kElems}, DType::f32, dev);
  Tensor big = Tensor::zeros({3 * kElems}, DType::f32, dev), big_in = Tensor::zeros({3 * kElems}, DType::f32, dev);
  if (dev.is_cpu()) {  // a ring of separate calls would serialise, and deadlock, on NCCL
    std::unique_ptr<Work> r, sw;
    EXPECT_EQ(sent_during(c, [&] { r = c.recv_async(in, prev); }), 0) << "recv_async";
    EXPECT_EQ(sent_during(c, [&] { sw = c.send_async(t, next); }), s) << "send_async";
    r->wait();
    sw->wait();
  }
  EXPECT_EQ(sent_during(c, [&] {
              c.exchange({{P2POp::Kind::kSend, t, next, 1},
                          {P2POp::Kind::kSend, big, prev, 2},
                          {P2POp::Kind::kRecv, in, prev, 1},
                          {P2POp::Kind::kRecv, big_in, next, 2}})
                  ->wait();
            }),
            s + 3 * s)
      << "exchange";
  EXPECT_EQ(sent_during(c, [&] { c.barrier(); }), 0) << "barrier";
  Tensor empty = Tensor::zeros({0}, DType::f32, dev);
  EXPECT_EQ(sent_during(c, [&] { c.all_reduce(empty, ReduceOp::kSum); }), 0) << "an empty tensor";
}

TEST(CommBytesSent, FollowsTheNcclTestsConvention) { check_bytes_sent(testing::world(), Device::cpu()); }

TEST(CommBytesSent, HostHelpersCountTheirCollectives) {
  Communicator& c = testing::world();
  const int64_t n = c.size();
  // all_reduce_scalar: one f64 all-reduce (8 bytes); all_true: one i32 all-reduce (4 bytes).
  EXPECT_EQ(sent_during(c, [&] { c.all_reduce_scalar(1.0, ReduceOp::kSum); }), 2 * (n - 1) * 8 / n);
  EXPECT_EQ(sent_during(c, [&] { c.all_true(true); }), 2 * (n - 1) * 4 / n);
  // all_gather_strings: the i64 lengths (n·8 gathered), then the u16 characters (2 a char).
  const std::string s = "abc";
  EXPECT_EQ(sent_during(c, [&] { c.all_gather_strings(s); }), (n - 1) * n * 8 / n + (n - 1) * n * 3 * 2 / n);
}

TEST(CommBytesSent, GroupsCountSeparately) {
  Runtime& rt = testing::runtime();
  std::vector<std::vector<int>> parity(2);
  for (int r = 0; r < rt.size(); ++r) parity[static_cast<size_t>(r % 2)].push_back(r);
  auto g = rt.new_group("parity", parity);
  EXPECT_EQ(g->bytes_sent(), 0) << "a new group has sent nothing";
  const int64_t world_before = testing::world().bytes_sent();
  Tensor t = Tensor::zeros({100});
  g->all_reduce(t, ReduceOp::kSum);
  const int64_t n = g->size();
  EXPECT_EQ(g->bytes_sent(), n == 1 ? 0 : 2 * (n - 1) * 400 / n) << "a group of one counts nothing";
  EXPECT_EQ(testing::world().bytes_sent(), world_before);
  testing::world().barrier();
}

TEST(CommBytesSentCuda, FollowsTheNcclTestsConvention) {
  Communicator* c = cuda_world();
  if (!c) GTEST_SKIP() << "no GPU visible";
  check_bytes_sent(*c, Device::cuda(testing::runtime().info().local_rank % cuda_device_count()));
}

}  // namespace
}  // namespace ternion::parallel

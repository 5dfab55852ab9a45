// Every collective of the MPI communicator against a host-computed expectation, for every
// dtype and sizes {0, 1, prime, large}; uneven gathers, async handles, rings of send/recv,
// broadcasts from a non-zero root, sub-groups, the chunked paths above MPI's int counts,
// and the same checks on CUDA tensors (NCCL) where a GPU is visible. Run under mpirun
// (comm.cmake registers -np 2, 3 and 4); rank 0 prints the report, other ranks print their
// failures prefixed by their rank, and any failing rank fails the run.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel {
namespace {

Communicator* g_world = nullptr;

const DType kDtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u16};
const ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax};

// Rank r's element i: a small integer, exact in every dtype (bf16 holds integers to 256).
double value(int r, int64_t i) { return static_cast<double>((i * 7 + r * 3) % 11 + r); }

Tensor make(const std::vector<double>& v, DType d, Device dev = Device::cpu()) {
  return Tensor::from_vector<double>(v, {static_cast<int64_t>(v.size())}).to(d).to(dev);
}
std::vector<double> values(int r, int64_t n, int64_t first = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = value(r, first + i);
  return v;
}
std::vector<double> host(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

double reduce(ReduceOp op, DType d, int n, int64_t i, int64_t first = 0) {
  double acc = op == ReduceOp::kMax ? -1e300 : 0.0;
  for (int r = 0; r < n; ++r) acc = op == ReduceOp::kMax ? std::max(acc, value(r, first + i)) : acc + value(r, first + i);
  if (op == ReduceOp::kAvg) acc = is_floating(d) ? acc / n : std::trunc(acc / n);
  return acc;
}
double tolerance(DType d) {
  switch (d) {
    case DType::bf16: return 1e-2;
    case DType::f16: return 1e-3;
    case DType::f32: return 1e-6;
    default: return 1e-12;
  }
}

#define EXPECT_CLOSE(got, want, d, what)                                                   \
  do {                                                                                     \
    const double g_ = (got), w_ = (want);                                                  \
    if (std::abs(g_ - w_) > tolerance(d) * std::max(1.0, std::abs(w_))) {                  \
      ADD_FAILURE() << what << " " << dtype_name(d) << ": got " << g_ << ", want " << w_;  \
      break;                                                                               \
    }                                                                                      \
  } while (0)

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
        std::vector<double> got = host(t);
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_CLOSE(got[static_cast<size_t>(i)], reduce(op, d, c.size(), i),
                       d, "all_reduce " << reduce_op_name(op) << " n=" << n << " i=" << i);
        }
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
        std::vector<double> got = host(out);
        for (int64_t i = 0; i < blk; ++i) {
          EXPECT_CLOSE(got[static_cast<size_t>(i)], reduce(op, d, c.size(), c.rank() * blk + i), d,
                       "reduce_scatter " << reduce_op_name(op) << " blk=" << blk << " i=" << i);
        }
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
      std::vector<double> got = host(out);
      for (int r = 0; r < c.size(); ++r)
        for (int64_t i = 0; i < n; ++i)
          EXPECT_CLOSE(got[static_cast<size_t>(r * n + i)], value(r, i), d, "all_gather n=" << n << " r=" << r);
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
    std::vector<double> got = host(out);
    int64_t at = 0;
    for (int r = 0; r < c.size(); ++r)
      for (int64_t i = 0; i < counts[static_cast<size_t>(r)]; ++i, ++at)
        EXPECT_CLOSE(got[static_cast<size_t>(at)], value(r, i), d, "all_gather_v r=" << r << " i=" << i);
  }
}

void check_broadcast(Communicator& c, Device dev) {
  const int root = c.size() - 1;  // not rank 0
  for (DType d : kDtypes) {
    for (int64_t n : sizes(d)) {
      Tensor t = make(values(c.rank(), n), d, dev);
      c.broadcast(t, root);
      std::vector<double> got = host(t);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_CLOSE(got[static_cast<size_t>(i)], value(root, i), d, "broadcast n=" << n << " i=" << i);
    }
  }
}

// Every rank sends to the next and receives from the previous, all at once.
void check_ring(Communicator& c, Device dev, int64_t n, DType d) {
  const int next = (c.rank() + 1) % c.size(), prev = (c.rank() + c.size() - 1) % c.size();
  Tensor out = make(values(c.rank(), n), d, dev);
  Tensor in = Tensor::zeros({n}, d, dev);
  auto r = c.recv_async(in, prev, 5);
  auto s = c.send_async(out, next, 5);
  r->wait();
  s->wait();
  std::vector<double> got = host(in);
  for (int64_t i = 0; i < n; ++i) EXPECT_CLOSE(got[static_cast<size_t>(i)], value(prev, i), d, "ring i=" << i);
}

void check_send_recv(Communicator& c, Device dev) {
  for (DType d : kDtypes) check_ring(c, dev, 1009, d);
  check_ring(c, dev, 1 << 20, DType::f32);
  check_ring(c, dev, 0, DType::f32);
  // Blocking pairs: even ranks send first, odd ranks receive first.
  if (c.size() % 2 == 0) {
    const int peer = c.rank() ^ 1;
    Tensor mine = make(values(c.rank(), 1009), DType::i64, dev), theirs = Tensor::zeros({1009}, DType::i64, dev);
    if (c.rank() % 2 == 0) {
      c.send(mine, peer, 1);
      c.recv(theirs, peer, 2);
    } else {
      c.recv(theirs, peer, 1);
      c.send(mine, peer, 2);
    }
    EXPECT_EQ(host(theirs), values(peer, 1009));
  }
}

TEST(CommConformance, AllReduce) { check_all_reduce(*g_world, Device::cpu()); }
TEST(CommConformance, ReduceScatter) { check_reduce_scatter(*g_world, Device::cpu()); }
TEST(CommConformance, AllGather) { check_all_gather(*g_world, Device::cpu()); }
TEST(CommConformance, AllGatherVUneven) { check_all_gather_v(*g_world, Device::cpu()); }
TEST(CommConformance, BroadcastFromLastRank) { check_broadcast(*g_world, Device::cpu()); }
TEST(CommConformance, SendRecv) { check_send_recv(*g_world, Device::cpu()); }

TEST(CommConformance, AsyncOverlapsAndCompletesInOrder) {
  Communicator& c = *g_world;
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
  for (auto& w : works) w->wait();
  w_rs->wait();
  EXPECT_TRUE(w_ag->test() || (w_ag->wait(), true));
  const double ranks = c.size() * (c.size() - 1) / 2.0;
  for (int k = 0; k < 8; ++k) {
    std::vector<float> v = ts[static_cast<size_t>(k)].to_vector<float>();
    EXPECT_EQ(v.front(), ranks + k * c.size());
    EXPECT_EQ(v.back(), ranks + k * c.size());
  }
  EXPECT_EQ(rs.to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(g_out.to_vector<float>()[static_cast<size_t>(3 * (c.size() - 1))], c.size() - 1);
  // A Work dropped unfinished completes before its destructor returns.
  Tensor dropped = Tensor::full({1009}, 1.0);
  c.all_reduce_async(dropped, ReduceOp::kSum).reset();
  EXPECT_EQ(dropped.to_vector<float>()[0], c.size());
}

TEST(CommConformance, SubGroupsOfEvenAndOddRanks) {
  Runtime& rt = *Runtime::get();
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
  g_world->barrier();
}

TEST(CommConformance, ChunkedAboveTheCountLimit) {
  set_mpi_max_count_for_testing(100);
  check_all_reduce(*g_world, Device::cpu());
  check_reduce_scatter(*g_world, Device::cpu());
  check_all_gather(*g_world, Device::cpu());
  check_all_gather_v(*g_world, Device::cpu());
  check_broadcast(*g_world, Device::cpu());
  check_ring(*g_world, Device::cpu(), 1009, DType::f64);
  set_mpi_max_count_for_testing(INT_MAX);
}

TEST(CommConformance, HostHelpers) {
  Communicator& c = *g_world;
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
  EXPECT_THROW(g_world->all_gather(t, wrong), Error);
  EXPECT_THROW(g_world->broadcast(t, g_world->size()), Error);
  EXPECT_THROW(g_world->send(t, g_world->rank()), Error);
  EXPECT_THROW(Runtime::get()->new_group("bad", {{0}}), Error);  // not a partition
}

// The NCCL backend, where this build has CUDA and the machine a GPU.
class CommCuda : public testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no GPU visible";
    dev_ = Device::cuda(Runtime::get()->info().local_rank % cuda_device_count());
  }
  Device dev_;
};
TEST_F(CommCuda, AllReduce) { check_all_reduce(*g_world, dev_); }
TEST_F(CommCuda, ReduceScatter) { check_reduce_scatter(*g_world, dev_); }
TEST_F(CommCuda, AllGather) { check_all_gather(*g_world, dev_); }
TEST_F(CommCuda, AllGatherVUneven) { check_all_gather_v(*g_world, dev_); }
TEST_F(CommCuda, Broadcast) { check_broadcast(*g_world, dev_); }
TEST_F(CommCuda, SendRecvRing) { check_ring(*g_world, dev_, 1009, DType::f32); }

// Non-zero ranks report only their failures, prefixed by the rank.
class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.message());
  }

 private:
  int rank_;
};

}  // namespace
}  // namespace ternion::parallel

int main(int argc, char** argv) {
  using namespace ternion::parallel;
  Runtime& rt = Runtime::init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  if (rt.rank() != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rt.rank()));
  }
  return run_ranked([&] {
    auto world = rt.world();
    g_world = world.get();
    const int rc = RUN_ALL_TESTS();
    g_world = nullptr;
    return rc;
  });
}

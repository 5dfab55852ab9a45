// The identity communicator and the host helpers, in one process (no MPI). The
// multi-process behaviour is comm_conformance_test's (tests run under mpirun).
#include <gtest/gtest.h>

#include "parallel/communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel {
namespace {

TEST(comm_self, CollectivesAreTheIdentity) {
  auto c = make_self_communicator("dp", 3);
  EXPECT_EQ(c->size(), 1);
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->describe(), "group dp (world ranks 3)");
  Tensor t = Tensor::from_vector<float>({1, 2, 3}, {3});
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    c->all_reduce(t, op);
    c->all_reduce_async(t, op)->wait();
  }
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  Tensor out = Tensor::zeros({3});
  c->all_gather(t, out);
  EXPECT_EQ(out.to_vector<float>(), t.to_vector<float>());
  Tensor rs = Tensor::zeros({3});
  auto w = c->reduce_scatter_async(t, rs, ReduceOp::kSum);
  EXPECT_TRUE(w->test());
  EXPECT_EQ(rs.to_vector<float>(), t.to_vector<float>());
  Tensor v = Tensor::zeros({3});
  c->all_gather_v(t, v, {3});
  EXPECT_EQ(v.to_vector<float>(), t.to_vector<float>());
  c->broadcast(t, 0);
  c->barrier();
  c->all_reduce_scalar(1.0, ReduceOp::kSum);
  c->all_gather_strings("abc");
  EXPECT_EQ(c->bytes_sent(), 0) << "a group of one sends nothing";
}

TEST(comm_self, MisuseNamesTheOpAndShapes) {
  auto c = make_self_communicator("tp", 0);
  Tensor t = Tensor::zeros({4});
  Tensor small = Tensor::zeros({3});
  EXPECT_THROW(c->all_gather(t, small), Error);
  EXPECT_THROW(c->all_gather_v(t, small, {4}), Error);
  EXPECT_THROW(c->all_gather_v(t, t, {4, 0}), Error);
  EXPECT_THROW(c->broadcast(t, 1), Error);
  EXPECT_THROW(c->send(t, 0), Error);
  EXPECT_THROW(c->recv(t, 1), Error);
  EXPECT_THROW(c->send_async(t, 0), Error);
  EXPECT_THROW(c->exchange({{P2POp::Kind::kRecv, t, 0, 0}}), Error) << "no peer in a group of one";
  EXPECT_THROW(c->exchange({{P2POp::Kind::kSend, t, 1, 0}}), Error);
  EXPECT_TRUE(c->exchange({})->test());
  Tensor nc = Tensor::zeros({2, 3}).transpose(0, 1);
  try {
    c->all_reduce(nc, ReduceOp::kSum);
    FAIL() << "non-contiguous tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[all_reduce]"), std::string::npos) << e.what();
  }
}

TEST(comm_self, HostHelpers) {
  auto c = make_self_communicator("world", 0);
  EXPECT_EQ(c->all_gather_strings("config:abc\xff"), (std::vector<std::string>{"config:abc\xff"}));
  EXPECT_EQ(c->all_gather_strings(""), (std::vector<std::string>{""}));
  EXPECT_TRUE(c->all_true(true));
  EXPECT_FALSE(c->all_true(false));
  EXPECT_DOUBLE_EQ(c->all_reduce_scalar(2.5, ReduceOp::kAvg), 2.5);
}

TEST(comm_runtime, StandaloneIsAWorldOfOneWithoutMpi) {
  Runtime& rt = Runtime::init();
  EXPECT_EQ(&rt, Runtime::get());
  EXPECT_FALSE(rt.info().mpi);
  EXPECT_EQ(rt.size(), 1);
  EXPECT_EQ(rt.info().local_size, 1);
  EXPECT_FALSE(rt.info().hostname.empty());
  auto w = rt.world();
  EXPECT_EQ(w->size(), 1);
  EXPECT_EQ(w->name(), "world");
  auto g = rt.new_group("dp", {{0}});
  EXPECT_EQ(g->describe(), "group dp (world ranks 0)");
  EXPECT_THROW(rt.new_group("dp", {{0}, {1}}), Error);
  EXPECT_EQ(run_ranked([] { return 7; }), 7);
}

TEST(comm_runtime, RunRankedTurnsAnExceptionIntoAFatalError) {
  EXPECT_EXIT(run_ranked([]() -> int { throw Error("[step] boom"); }), testing::ExitedWithCode(1),
              "ternion: rank 0: \\[step\\] boom");
}

}  // namespace
}  // namespace ternion::parallel

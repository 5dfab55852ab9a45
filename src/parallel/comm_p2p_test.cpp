// Point-to-point under mpirun: rings of send_async/recv_async, blocking pairs, exchanges in
// which every rank sends to its neighbours while receiving from them (tensors far above
// MPI's eager limit, so a send that waited for its receive would deadlock), mixed tags and
// sizes in issue order, the chunked path, and misuse. A receive issued out of order is a
// fatal error, so it is checked by tests/e2e/comm_fault.sh (mode `tag`), not here.
#include <gtest/gtest.h>

#include <climits>

#include "parallel/comm_conformance.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {
namespace {

Communicator& world() { return testing::world(); }
int next_of(const Communicator& c) { return (c.rank() + 1) % c.size(); }
int prev_of(const Communicator& c) { return (c.rank() + c.size() - 1) % c.size(); }

// Every rank sends to the next and receives from the previous, all at once.
void check_ring(Communicator& c, Device dev, int64_t n, DType d) {
  const int next = next_of(c), prev = prev_of(c);
  Tensor out = make(values(c.rank(), n), d, dev);
  Tensor in = Tensor::zeros({n}, d, dev);
  auto r = c.recv_async(in, prev, 5);
  auto s = c.send_async(out, next, 5);
  r->wait();
  s->wait();
  expect_close(host(in), values(prev, n), d, str_cat("ring n=", n));
}

TEST(CommP2P, RingOfAsyncSendsAndReceives) {
  for (DType d : kDtypes) check_ring(world(), Device::cpu(), 1009, d);
  check_ring(world(), Device::cpu(), 1 << 20, DType::f32);
  check_ring(world(), Device::cpu(), 0, DType::f32);
}

TEST(CommP2P, BlockingPairs) {
  Communicator& c = world();
  if (c.size() % 2) GTEST_SKIP() << "pairs need an even group";
  // Even ranks send first, odd ranks receive first.
  const int peer = c.rank() ^ 1;
  Tensor mine = make(values(c.rank(), 1009), DType::i64), theirs = Tensor::zeros({1009}, DType::i64);
  if (c.rank() % 2 == 0) {
    c.send(mine, peer, 1);
    c.recv(theirs, peer, 2);
  } else {
    c.recv(theirs, peer, 1);
    c.send(mine, peer, 2);
  }
  EXPECT_EQ(host(theirs), values(peer, 1009));
}

// The pipeline steady state: 4 MiB to each neighbour and 4 MiB from each, in one exchange.
// Blocking sends in this pattern (every rank sending first) would wait forever on MPI's
// rendezvous protocol; the exchange posts everything before waiting.
void check_neighbour_exchange(Communicator& c, Device dev) {
  constexpr int64_t kN = 1 << 20;  // f32: 4 MiB
  const int next = next_of(c), prev = prev_of(c);
  Tensor to_next = make(values(c.rank(), kN), DType::f32, dev);
  Tensor to_prev = make(values(c.rank(), kN, 3), DType::f32, dev);
  Tensor from_prev = Tensor::zeros({kN}, DType::f32, dev), from_next = Tensor::zeros({kN}, DType::f32, dev);
  // Sends first on every rank: the order the deadlock needs. Receives in the order the
  // peers send: from prev (its to_next, tag 1) before from next (its to_prev, tag 2),
  // which is also right for two ranks, where next and prev are one peer.
  auto w = c.exchange({{P2POp::Kind::kSend, to_next, next, 1},
                       {P2POp::Kind::kSend, to_prev, prev, 2},
                       {P2POp::Kind::kRecv, from_prev, prev, 1},
                       {P2POp::Kind::kRecv, from_next, next, 2}});
  w->wait();
  EXPECT_TRUE(w->test()) << "test() after wait()";
  expect_close(host(from_prev), values(prev, kN), DType::f32, "exchange from prev");
  expect_close(host(from_next), values(next, kN, 3), DType::f32, "exchange from next");
}

TEST(CommP2P, NeighbourExchangeOfLargeTensorsCompletes) { check_neighbour_exchange(world(), Device::cpu()); }

TEST(CommP2P, MixedTagsAndSizesMatchInIssueOrder) {
  Communicator& c = world();
  const int next = next_of(c), prev = prev_of(c);
  // Three messages to next with different tags, dtypes and sizes; the receiver issues its
  // receives in the same order, across two calls.
  Tensor a = make(values(c.rank(), 7), DType::i32), b = make(values(c.rank(), 300000), DType::f64),
         e = Tensor::zeros({0}), z = make(values(c.rank(), 11), DType::bf16);
  Tensor ra = Tensor::zeros({7}, DType::i32), rb = Tensor::zeros({300000}, DType::f64), re = Tensor::zeros({0}),
         rz = Tensor::zeros({11}, DType::bf16);
  auto sends = c.exchange({{P2POp::Kind::kSend, a, next, 7},
                           {P2POp::Kind::kSend, b, next, 0},
                           {P2POp::Kind::kSend, e, next, 9},  // empty: moves nothing on either side
                           {P2POp::Kind::kSend, z, next, kMaxTag}});
  auto first = c.recv_async(ra, prev, 7);
  auto rest = c.exchange({{P2POp::Kind::kRecv, rb, prev, 0},
                          {P2POp::Kind::kRecv, re, prev, 9},
                          {P2POp::Kind::kRecv, rz, prev, kMaxTag}});
  first->wait();
  rest->wait();
  sends->wait();
  expect_close(host(ra), values(prev, 7), DType::i32, "tag 7");
  expect_close(host(rb), values(prev, 300000), DType::f64, "tag 0");
  expect_close(host(rz), values(prev, 11), DType::bf16, "tag kMaxTag");
}

TEST(CommP2P, ChunkedAboveTheCountLimit) {
  set_mpi_max_count_for_testing(100);
  check_ring(world(), Device::cpu(), 1009, DType::f64);
  check_neighbour_exchange(world(), Device::cpu());
  set_mpi_max_count_for_testing(INT_MAX);
}

TEST(CommP2P, MisuseThrowsBeforeCommunicating) {
  Communicator& c = world();
  Tensor t = Tensor::zeros({4});
  EXPECT_THROW(c.send(t, c.rank()), Error);
  EXPECT_THROW(c.recv(t, c.size()), Error);
  EXPECT_THROW(c.send(t, next_of(c), -1), Error);
  EXPECT_THROW(c.send(t, next_of(c), kMaxTag + 1), Error);
  Tensor nc = Tensor::zeros({2, 3}).transpose(0, 1);
  EXPECT_THROW(c.exchange({{P2POp::Kind::kSend, t, next_of(c), 0}, {P2POp::Kind::kRecv, nc, prev_of(c), 0}}), Error);
  EXPECT_EQ(c.exchange({})->test(), true) << "an empty exchange is done at once";
}

// On NCCL separate point-to-point calls serialise on the group's stream (a ring of them
// would deadlock), so the device checks are exchanges and even/odd-ordered pairs.
TEST(CommP2PCuda, NeighbourExchangeAndPairs) {
  Communicator* c = cuda_world();
  if (!c) GTEST_SKIP() << "no GPU visible";
  const Device dev = Device::cuda(testing::runtime().info().local_rank % cuda_device_count());
  check_neighbour_exchange(*c, dev);
  if (c->size() % 2 == 0) {
    const int peer = c->rank() ^ 1;
    Tensor mine = make(values(c->rank(), 1009), DType::f32, dev), theirs = Tensor::zeros({1009}, DType::f32, dev);
    if (c->rank() % 2 == 0) {
      c->send(mine, peer, 1);
      c->recv(theirs, peer, 2);
    } else {
      c->recv(theirs, peer, 1);
      c->send(mine, peer, 2);
    }
    expect_close(host(theirs), values(peer, 1009), DType::f32, "pair");
  }
}

}  // namespace
}  // namespace ternion::parallel

// GradReducer under mpirun: buckets start during backward (from the grad-ready hooks),
// gradients come out as the average over the dp group, accumulation communicates only on
// the last backward, a parameter the graph never reached on any rank keeps no gradient,
// one that only some ranks used gets the same average everywhere, and one that only an
// earlier micro-batch reached keeps what it accumulated.
#include "parallel/data_parallel.h"

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {
namespace {

Communicator& world() { return testing::world(); }
constexpr int64_t kN = 1000;

struct Chain {
  Tensor w1 = Tensor::full({1, kN}, 2.0), w2 = Tensor::full({1, kN}, 3.0), w3 = Tensor::full({1, kN}, 5.0);
  Tensor unused = Tensor::full({1, kN}, 1.0);
  Chain() {
    for (Tensor* t : {&w1, &w2, &w3, &unused}) autograd::set_requires_grad(*t);
  }
  // Registration order; buckets fill in reverse, so `unused` is in the first bucket
  // unless unused_first.
  std::vector<Tensor> params(bool unused_first = false) const {
    if (unused_first) return {unused, w1, w2, w3};
    return {w1, w2, w3, unused};
  }
  // loss = sum(x * w1 * w2 * w3): d/dw1 = 15x, d/dw2 = 10x, d/dw3 = 6x.
  // With use_unused, + sum(4 * unused): d/dunused = 4.
  void backward(double x, bool use_unused = false) {
    Tensor in = Tensor::full({1, kN}, x);
    Tensor loss = autograd::sum(autograd::mul(autograd::mul(autograd::mul(in, w1), w2), w3));
    if (use_unused) loss = autograd::add(loss, autograd::sum(autograd::mul(Tensor::full({1, kN}, 4.0), unused)));
    autograd::backward(loss);
  }
};

void expect_all(const Tensor& t, double v, const char* what) {
  ASSERT_TRUE(t.defined()) << what;
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_FLOAT_EQ(t.data<float>()[i], static_cast<float>(v)) << what << "[" << i << "]";
}

TEST(GradReducer, BucketsStartDuringBackwardAndAverageOverTheGroup) {
  Chain c;
  // One parameter per bucket; `unused` in the last one, which no hook completes.
  GradReducer reducer(world(), c.params(/*unused_first=*/true), /*bucket_mb=*/0.003);
  EXPECT_EQ(reducer.stats().buckets, 4);
  // Reverse registration order: the last parameter's bucket is first.
  EXPECT_EQ(reducer.bucket_of_params(), (std::vector<int>{3, 2, 1, 0}));
  const int n = world().size();
  const double x = world().rank() + 1;  // ranks see different data
  const double mean_x = (n + 1) / 2.0;
  reducer.begin_backward(true);
  c.backward(x);
  reducer.finish();
  EXPECT_EQ(reducer.stats().launched_early, 3) << "w1..w3's buckets start inside backward";
  expect_all(autograd::grad(c.w1), 15 * mean_x, "w1.grad");
  expect_all(autograd::grad(c.w2), 10 * mean_x, "w2.grad");
  expect_all(autograd::grad(c.w3), 6 * mean_x, "w3.grad");
  EXPECT_FALSE(autograd::grad(c.unused).defined()) << "a parameter outside the graph gets no gradient";
}

TEST(GradReducer, AccumulationCommunicatesOnlyOnTheLastBackward) {
  Chain c;
  GradReducer reducer(world(), c.params(), /*bucket_mb=*/1.0);  // everything in one bucket
  EXPECT_EQ(reducer.stats().buckets, 1);
  const int n = world().size();
  const double x = world().rank() + 1;
  reducer.begin_backward(false);
  c.backward(x);
  expect_all(autograd::grad(c.w1), 15 * x, "w1.grad after the first micro-batch (local)");
  reducer.begin_backward(true);
  c.backward(2 * x);
  reducer.finish();
  // Sum over the two micro-batches (x + 2x), averaged over ranks.
  expect_all(autograd::grad(c.w1), 15 * 3 * (n + 1) / 2.0, "w1.grad");
  expect_all(autograd::grad(c.w3), 6 * 3 * (n + 1) / 2.0, "w3.grad");
  EXPECT_EQ(reducer.stats().launched_early, 0) << "the single bucket waits for the unused parameter";
}

// Rank 0's graph reaches `unused`, the others' do not (a branch taken on one replica
// only). Every rank must end with the same gradient, rank 0's 4 averaged over the group,
// or the replicas' weights drift apart at the next optimizer step.
// Its bucket first or last, alone or shared: the ranks' hooks then complete buckets in
// different orders, and the all-reduces must still pair up.
TEST(GradReducer, ParameterUsedOnOneRankGetsTheSameGradientOnEveryRank) {
  for (bool unused_first : {false, true}) {
    for (double bucket_mb : {0.003, 1.0}) {
      SCOPED_TRACE(::testing::Message() << "unused_first=" << unused_first << " bucket_mb=" << bucket_mb);
      Chain c;
      GradReducer reducer(world(), c.params(unused_first), bucket_mb);
      const int n = world().size();
      reducer.begin_backward(true);
      c.backward(1.0, /*use_unused=*/world().rank() == 0);
      reducer.finish();
      expect_all(autograd::grad(c.unused), 4.0 / n, "unused.grad");
      expect_all(autograd::grad(c.w1), 15.0, "w1.grad");
      expect_all(autograd::grad(c.w3), 6.0, "w3.grad");
    }
  }
}

// Accumulation: the first micro-batch reaches `unused`, the last does not, so its hook does
// not fire in the backward that communicates; what it accumulated must still be reduced.
TEST(GradReducer, GradientFromAnEarlierMicroBatchIsReduced) {
  Chain c;
  GradReducer reducer(world(), c.params(), /*bucket_mb=*/0.003);
  const int n = world().size();
  const double x = world().rank() + 1;
  reducer.begin_backward(false);
  c.backward(x, /*use_unused=*/true);
  reducer.begin_backward(true);
  c.backward(2 * x);
  reducer.finish();
  expect_all(autograd::grad(c.unused), 4.0, "unused.grad");
  expect_all(autograd::grad(c.w1), 15 * 3 * (n + 1) / 2.0, "w1.grad");
}

}  // namespace
}  // namespace ternion::parallel

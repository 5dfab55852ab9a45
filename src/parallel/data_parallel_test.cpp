// GradReducer under mpirun: buckets start during backward (from the grad-ready hooks),
// gradients come out as the average over the dp group, accumulation communicates only on
// the last backward, and a parameter the graph never reached keeps no gradient.
#include "parallel/data_parallel.h"

#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "parallel/runtime.h"

namespace ternion::parallel {
namespace {

Communicator* g_world = nullptr;
constexpr int64_t kN = 1000;

struct Chain {
  Tensor w1 = Tensor::full({1, kN}, 2.0), w2 = Tensor::full({1, kN}, 3.0), w3 = Tensor::full({1, kN}, 5.0);
  Tensor unused = Tensor::full({1, kN}, 1.0);
  Chain() {
    for (Tensor* t : {&w1, &w2, &w3, &unused}) autograd::set_requires_grad(*t);
  }
  std::vector<Tensor> params() const { return {w1, w2, w3, unused}; }
  // loss = sum(x * w1 * w2 * w3): d/dw1 = 15x, d/dw2 = 10x, d/dw3 = 6x.
  void backward(double x) {
    Tensor in = Tensor::full({1, kN}, x);
    autograd::backward(autograd::sum(autograd::mul(autograd::mul(autograd::mul(in, w1), w2), w3)));
  }
};

void expect_all(const Tensor& t, double v, const char* what) {
  ASSERT_TRUE(t.defined()) << what;
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_FLOAT_EQ(t.data<float>()[i], static_cast<float>(v)) << what << "[" << i << "]";
}

TEST(GradReducer, BucketsStartDuringBackwardAndAverageOverTheGroup) {
  Chain c;
  GradReducer reducer(*g_world, c.params(), /*bucket_mb=*/0.003);  // one parameter per bucket
  EXPECT_EQ(reducer.stats().buckets, 4);
  // Reverse registration order: the last parameter's bucket is first.
  EXPECT_EQ(reducer.bucket_of_params(), (std::vector<int>{3, 2, 1, 0}));
  const int n = g_world->size();
  const double x = g_world->rank() + 1;  // ranks see different data
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
  GradReducer reducer(*g_world, c.params(), /*bucket_mb=*/1.0);  // everything in one bucket
  EXPECT_EQ(reducer.stats().buckets, 1);
  const int n = g_world->size();
  const double x = g_world->rank() + 1;
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

}  // namespace
}  // namespace ternion::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ternion::parallel::Runtime& rt = ternion::parallel::Runtime::init(&argc, &argv);
  auto world = rt.world();
  ternion::parallel::g_world = world.get();
  const int failed = RUN_ALL_TESTS();
  const bool ok = world->all_true(failed == 0);
  world.reset();
  ternion::parallel::Runtime::shutdown();
  return ok ? 0 : 1;
}

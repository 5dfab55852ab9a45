#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "autograd/test_util.h"

namespace ternion::autograd {
namespace {

using testing::randn;

Tensor leaf(const Shape& s, uint64_t seed) {
  Tensor t = randn(s, seed);
  set_requires_grad(t);
  return t;
}

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({3}, 1);
  backward(sum(scale(x, 2.0)));
  backward(sum(scale(x, 3.0)));
  for (double g : grad(x).to_vector<double>()) EXPECT_DOUBLE_EQ(g, 5.0);
}

TEST(Engine, SharedInputSumsBothPaths) {
  Tensor x = leaf({4}, 2);
  backward(sum(add(mul(x, x), x)));  // d/dx (x^2 + x) = 2x + 1
  auto xv = x.to_vector<double>(), gv = grad(x).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(gv[i], 2 * xv[i] + 1, 1e-12);
}

TEST(Engine, NoGradRecordsNothing) {
  Tensor x = leaf({2}, 3);
  Tensor y;
  {
    NoGrad guard;
    y = scale(x, 2.0);
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(requires_grad(y));
  EXPECT_EQ(grad_fn(y), nullptr);
  EXPECT_THROW(backward(sum(y)), Error);
}

TEST(Engine, SavedTensorsReleasedAfterBackward) {
  Tensor x = leaf({2, 3}, 4);
  Tensor y = gelu(x);
  auto node = grad_fn(y);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->num_saved(), 1u);
  backward(sum(y));
  EXPECT_EQ(node->num_saved(), 0u);
  EXPECT_THROW(backward(sum(y)), Error);  // graph is gone: a clear error, not garbage
}

// Saved activations are counted once per storage, parameters not at all, and released
// with the graph.
TEST(Engine, SavedStatsCountActivationsOnce) {
  const size_t base = saved_stats().bytes;
  reset_saved_peak();
  Tensor w = leaf({64}, 3);      // a parameter: saved by mul, never counted
  Tensor x = randn({64}, 4);     // an input that needs no grad: counted
  Tensor h = mul(x, w);          // saves x and w
  Tensor y = mul(h, h);          // saves h twice: one storage
  const size_t held = saved_stats().bytes - base;
  EXPECT_EQ(held, x.nbytes() + h.nbytes());
  backward(sum(y));
  EXPECT_EQ(saved_stats().bytes, base);
  EXPECT_GE(saved_stats().peak - base, held);
  {
    Tensor z = mul(x, w);  // a graph dropped without backward releases its bytes too
    EXPECT_EQ(saved_stats().bytes - base, x.nbytes());
  }
  EXPECT_EQ(saved_stats().bytes, base);
}

TEST(Engine, RetainGraphAllowsSecondBackward) {
  Tensor x = leaf({2}, 5);
  Tensor y = sum(gelu(x));
  backward({y}, {}, /*retain_graph=*/true);
  auto g1 = grad(x).to_vector<double>();
  backward(y);
  auto g2 = grad(x).to_vector<double>();
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g2[i], 2 * g1[i], 1e-12);
}

TEST(Engine, GradReadyHookFiresOnceAfterAllContributions) {
  Tensor w = leaf({3}, 6);
  int calls = 0;
  std::vector<double> seen;
  register_grad_ready_hook(w, [&](const Tensor& p) {
    ++calls;
    seen = grad(p).to_vector<double>();
  });
  Tensor x = randn({3}, 7);
  backward(sum(add(mul(x, w), scale(w, 2.0))));  // w used twice
  EXPECT_EQ(calls, 1);
  auto xv = x.to_vector<double>();
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(seen[i], xv[i] + 2.0, 1e-12);
}

TEST(Engine, HooksFireInReverseLayerOrder) {
  Tensor w1 = leaf({4, 4}, 8), w2 = leaf({4, 4}, 9), w3 = leaf({4, 4}, 10);
  std::vector<int> order;
  register_grad_ready_hook(w1, [&](const Tensor&) { order.push_back(1); });
  register_grad_ready_hook(w2, [&](const Tensor&) { order.push_back(2); });
  register_grad_ready_hook(w3, [&](const Tensor&) { order.push_back(3); });
  Tensor x = randn({2, 4}, 11);
  backward(sum(linear(gelu(linear(gelu(linear(x, w1)), w2)), w3)));
  EXPECT_EQ(order, (std::vector<int>{3, 2, 1}));
}

TEST(Engine, UnusedSplitOutputGetsZeroGradient) {
  Tensor x = leaf({2, 6}, 12);
  auto parts = split(x, {2, 4}, 1);
  backward(sum(parts[1]));
  auto g = grad(x).to_vector<double>();
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 6; ++c) EXPECT_EQ(g[r * 6 + c], c < 2 ? 0.0 : 1.0);
}

TEST(Engine, CheckpointMatchesPlainBackward) {
  Tensor w = leaf({5, 5}, 13), b = leaf({5}, 14);
  Tensor x0 = randn({3, 5}, 15);
  auto block = [&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{gelu(linear(in[0], w, b))};
  };
  Tensor x = detach(x0);
  set_requires_grad(x);
  backward(sum(block({x})[0]));
  auto gw = grad(w).to_vector<double>(), gx = grad(x).to_vector<double>();
  zero_grad(w);
  zero_grad(b);

  Tensor xc = detach(x0);
  set_requires_grad(xc);
  auto out = checkpoint(block, {xc});
  EXPECT_EQ(grad_fn(out[0])->name(), "Checkpoint");
  backward(sum(out[0]));
  EXPECT_EQ(grad(w).to_vector<double>(), gw);  // recomputation is bit-identical
  EXPECT_EQ(grad(xc).to_vector<double>(), gx);
}

TEST(Engine, CheckpointReachesParametersWhenInputNeedsNoGrad) {
  Tensor w = leaf({4, 4}, 16);
  Tensor x = randn({2, 4}, 17);
  auto out = checkpoint([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0], w)}; },
                        {x});
  backward(sum(out[0]));
  ASSERT_TRUE(grad(w).defined());
}

TEST(Engine, DetachCutsHistory) {
  Tensor x = leaf({2}, 18);
  Tensor y = detach(scale(x, 3.0));
  EXPECT_FALSE(requires_grad(y));
  EXPECT_TRUE(is_leaf(y));
}

TEST(Engine, OnlyFloatingLeavesRequireGrad) {
  Tensor i = Tensor::zeros({2}, DType::i32);
  EXPECT_THROW(set_requires_grad(i), Error);
}

}  // namespace
}  // namespace ternion::autograd

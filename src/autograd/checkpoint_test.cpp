// Checkpointed regions: what reaches the outer graph (gradients, grad-ready events).
#include <gtest/gtest.h>

#include <cmath>

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

// w feeds a checkpointed region and the layer after it. Its gradient is final only once
// both contributions are in: one ready event then, holding the sum (data parallelism
// all-reduces what the hook sees; a second event is an error there).
TEST(Checkpoint, ParameterUsedInsideAndOutsideIsReadyOnceWithItsWholeGradient) {
  Tensor w = leaf({4, 4}, 1);
  const Tensor x = randn({3, 4}, 2);
  auto region = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(linear(in[0], w))}; };
  backward(sum(linear(region({x})[0], w)));
  const std::vector<double> want = grad(w).to_vector<double>();
  zero_grad(w);

  int calls = 0;
  std::vector<double> seen;
  register_grad_ready_hook(w, [&](const Tensor& p) {
    ++calls;
    seen = grad(p).to_vector<double>();
  });
  backward(sum(linear(checkpoint(region, {x})[0], w)));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, want);
  EXPECT_EQ(grad(w).to_vector<double>(), want);
}

// A region may read an activation of the outer graph that is not one of its inputs: its
// gradient leaves through the checkpoint's node, and the node that made it runs once (a
// second run would find its saved tensors released).
TEST(Checkpoint, ActivationFromOutsideTheRegionGetsItsGradientThroughTheNode) {
  Tensor x = leaf({3, 4}, 3), w = leaf({4, 4}, 4);
  auto loss = [&](bool recompute) {
    Tensor u = gelu(x);  // outside the region, saved by Gelu
    auto region = [&w, u](const std::vector<Tensor>& in) { return std::vector<Tensor>{mul(linear(in[0], w), u)}; };
    Tensor h = scale(x, 0.5);
    return sum(recompute ? checkpoint(region, {h})[0] : region({h})[0]);
  };
  backward(loss(false));
  const auto gx = grad(x).to_vector<double>(), gw = grad(w).to_vector<double>();
  zero_grad(x);
  zero_grad(w);
  backward(loss(true));
  EXPECT_EQ(grad(x).to_vector<double>(), gx);
  EXPECT_EQ(grad(w).to_vector<double>(), gw);
}

// Regions inside regions: the inner one is recomputed during the outer one's backward; w
// (used in both and after them) is still ready once, with the plain gradient.
TEST(Checkpoint, NestedRegionsStillReadyEachParameterOnce) {
  Tensor w = leaf({4, 4}, 5);
  const Tensor x = randn({2, 4}, 6);
  auto inner = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(linear(in[0], w))}; };
  auto outer = [&](bool recompute) {
    return [&, recompute](const std::vector<Tensor>& in) {
      Tensor h = recompute ? checkpoint(inner, {in[0]})[0] : inner({in[0]})[0];
      return std::vector<Tensor>{gelu(linear(h, w))};
    };
  };
  backward(sum(linear(outer(false)({x})[0], w)));
  const auto want = grad(w).to_vector<double>();
  zero_grad(w);
  int calls = 0;
  register_grad_ready_hook(w, [&](const Tensor&) { ++calls; });
  backward(sum(linear(checkpoint(outer(true), {x})[0], w)));
  EXPECT_EQ(calls, 1);
  // Three uses: the sum's order may differ.
  const auto got = grad(w).to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12 * (1 + std::abs(want[i]))) << i;
}

TEST(Checkpoint, RegionThatNeedsNoGradientRecordsNothing) {
  const Tensor x = randn({2, 3}, 7), w = randn({3, 3}, 8);
  auto out = checkpoint([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0], w)}; }, {x});
  EXPECT_EQ(grad_fn(out[0]), nullptr);
  EXPECT_FALSE(requires_grad(out[0]));
}

}  // namespace
}  // namespace ternion::autograd

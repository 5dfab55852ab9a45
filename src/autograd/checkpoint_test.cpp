// Checkpointed regions and recomputable tensors: what reaches the outer graph (gradients,
// grad-ready events), and what stays saved.
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

// gelu's output feeds a matmul, which saves it: made recomputable, the matmul keeps the
// GELU input (saved by Gelu anyway) and the output is recomputed for its backward. The
// gradients are the same bits; the saved bytes drop by the output's.
TEST(Recomputable, SaversKeepTheInputsAndGradientsAreUnchanged) {
  Tensor w1 = leaf({32, 16}, 9), w2 = leaf({8, 32}, 10);
  const Tensor x = randn({64, 16}, 11);
  const size_t base = saved_stats().bytes;
  auto run = [&](bool recompute, size_t& held) {
    Tensor f = linear(x, w1);
    Tensor h = recompute ? recomputable([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {f}) : gelu(f);
    Tensor loss = sum(linear(h, w2));
    held = saved_stats().bytes - base;
    reset_saved_peak();
    backward(loss);
    EXPECT_EQ(saved_stats().bytes, base);
    return std::vector<std::vector<double>>{grad(w1).to_vector<double>(), grad(w2).to_vector<double>()};
  };
  size_t plain = 0, selective = 0;
  const auto want = run(false, plain);
  zero_grad(w1);
  zero_grad(w2);
  const auto got = run(true, selective);
  EXPECT_EQ(got, want);
  EXPECT_EQ(plain, x.nbytes() + 2 * 64 * 32 * sizeof(double));  // x, f, h
  EXPECT_EQ(selective, x.nbytes() + 64 * 32 * sizeof(double));  // x, f
  EXPECT_GE(saved_stats().peak - base, plain);  // h is back while the second matmul's backward runs
}

TEST(Recomputable, ARecomputationLaidOutDifferentlyIsAnError) {
  Tensor w = leaf({4, 4}, 12);
  const Tensor x = randn({4, 4}, 13);
  int calls = 0;
  Tensor h = recomputable(
      [&](const std::vector<Tensor>& in) { return ++calls == 1 ? gelu(in[0]) : gelu(in[0]).transpose(0, 1); },
      {linear(x, w)});
  Tensor loss = sum(linear(h, w));
  EXPECT_THROW(backward(loss), Error);
}

TEST(Recomputable, WithoutGradModeOrForAnInputItIsThePlainResult) {
  const Tensor x = randn({2, 2}, 14);
  Tensor same = recomputable([](const std::vector<Tensor>& in) { return in[0]; }, {x});
  EXPECT_EQ(same.impl_ptr(), x.impl_ptr());
  EXPECT_EQ(x.impl_ptr()->autograd, nullptr);
  NoGrad no_grad;
  Tensor y = recomputable([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x});
  EXPECT_EQ(y.impl_ptr()->autograd, nullptr);
}

}  // namespace
}  // namespace ternion::autograd

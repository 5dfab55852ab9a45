#include "optim/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ternion::optim {
namespace {

TEST(AdamW, MatchesTheClosedFormOfTwoSteps) {
  // Reference values computed by hand from torch.optim.AdamW's update rule.
  Tensor p = Tensor::from_vector<double>({1.0, -2.0}, {2});
  autograd::set_requires_grad(p);
  AdamW opt({{"w", p, true}}, {0.9, 0.999, 1e-8, 0.1});
  double ref[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  const double lr = 0.01;
  for (int t = 1; t <= 2; ++t) {
    autograd::zero_grad(p);
    autograd::backward(autograd::sum(autograd::mul(p, p)));  // g = 2p
    for (int i = 0; i < 2; ++i) {
      const double g = 2 * ref[i];
      ref[i] -= lr * 0.1 * ref[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      const double mhat = m[i] / (1 - std::pow(0.9, t)), vhat = v[i] / (1 - std::pow(0.999, t));
      ref[i] -= lr * mhat / (std::sqrt(vhat) + 1e-8);
    }
    opt.step(lr);
  }
  auto got = p.to_vector<double>();
  EXPECT_NEAR(got[0], ref[0], 1e-12);
  EXPECT_NEAR(got[1], ref[1], 1e-12);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(AdamW, NoDecayWhenNotMarkedAndSkipsMissingGrads) {
  Tensor p = Tensor::from_vector<double>({3.0}, {1}), q = Tensor::from_vector<double>({5.0}, {1});
  autograd::set_requires_grad(p);
  autograd::set_requires_grad(q);
  AdamW opt({{"b", p, false}, {"unused", q, true}}, {0.9, 0.95, 1e-8, 0.5});
  autograd::backward(autograd::sum(autograd::scale(p, 0.0)));  // zero gradient
  opt.step(1.0);
  EXPECT_EQ(p.to_vector<double>()[0], 3.0);  // zero grad, no decay: unchanged
  EXPECT_EQ(q.to_vector<double>()[0], 5.0);  // no grad at all: skipped
}

TEST(ClipGradNorm, ScalesOnlyAboveTheMax) {
  Tensor a = Tensor::from_vector<double>({3.0}, {1}), b = Tensor::from_vector<double>({4.0}, {1});
  autograd::set_requires_grad(a);
  autograd::set_requires_grad(b);
  autograd::backward(autograd::add(autograd::scale(a, 3.0), autograd::scale(b, 4.0)));  // grads 3, 4
  std::vector<ParamRef> refs{{"a", a, true}, {"b", b, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(refs, 10.0), 5.0);
  EXPECT_EQ(autograd::grad(a).item(), 3.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(refs, 1.0), 5.0);
  EXPECT_NEAR(autograd::grad(a).item(), 3.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_NEAR(autograd::grad(b).item(), 4.0 / (5.0 + 1e-6), 1e-12);
}

// The norm of a model split over ranks: this rank's primary parameters, plus what the
// group sum adds (here: another rank holding a gradient of norm 12); copies that another
// rank counts are scaled but not counted.
TEST(ClipGradNorm, GlobalOverGroupsCountsPrimaryCopiesOnce) {
  Tensor a = Tensor::from_vector<double>({3.0}, {1}), tied = Tensor::from_vector<double>({1.0}, {1});
  autograd::set_requires_grad(a);
  autograd::set_requires_grad(tied);
  autograd::backward(autograd::add(autograd::scale(a, 3.0), autograd::scale(tied, 4.0)));  // grads 3, 4
  std::vector<ParamRef> refs{{"a", a, true, true}, {"wte copy", tied, true, false}};
  double seen = -1;
  const double norm = clip_grad_norm(refs, 1.0, [&](double local) {
    seen = local;
    return local + 144.0;
  });
  EXPECT_DOUBLE_EQ(seen, 9.0);   // the tied copy is not in this rank's sum
  EXPECT_DOUBLE_EQ(norm, std::sqrt(9.0 + 144.0));
  EXPECT_NEAR(autograd::grad(tied).item(), 4.0 / (norm + 1e-6), 1e-12);  // but it is clipped
}

TEST(Schedule, WarmupCosineConstant) {
  EXPECT_DOUBLE_EQ(learning_rate(0, 100, 10, 1.0, 0.1, "cosine"), 1.0 / 11);
  EXPECT_DOUBLE_EQ(learning_rate(9, 100, 10, 1.0, 0.1, "cosine"), 10.0 / 11);
  EXPECT_DOUBLE_EQ(learning_rate(10, 100, 10, 1.0, 0.1, "cosine"), 1.0);
  EXPECT_NEAR(learning_rate(55, 100, 10, 1.0, 0.1, "cosine"), 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(learning_rate(100, 100, 10, 1.0, 0.1, "cosine"), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(50, 100, 10, 1.0, 0.1, "constant"), 1.0);
  EXPECT_THROW(learning_rate(50, 100, 10, 1.0, 0.1, "linear"), Error);
}

}  // namespace
}  // namespace ternion::optim

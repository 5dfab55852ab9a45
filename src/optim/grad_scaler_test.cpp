#include "optim/grad_scaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ternion::optim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(GradScaler, GrowsAfterTheIntervalAndBacksOffOnOverflow) {
  GradScaler s({true, 8.0, 2.0, 0.5, 3});
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_TRUE(s.update(1.0));
  EXPECT_TRUE(s.update(2.0));
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_EQ(s.good_steps(), 2);
  EXPECT_TRUE(s.update(3.0));  // third good step in a row: grow
  EXPECT_EQ(s.scale(), 16.0);
  EXPECT_EQ(s.good_steps(), 0);
  EXPECT_TRUE(s.update(1.0));
  EXPECT_FALSE(s.update(kInf));  // skip, halve, restart the count
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_EQ(s.good_steps(), 0);
  EXPECT_FALSE(s.update(std::nan("")));
  EXPECT_EQ(s.scale(), 4.0);
  EXPECT_EQ(s.skipped_steps(), 2);
}

TEST(GradScaler, DisabledIsTheIdentity) {
  GradScaler s;
  EXPECT_FALSE(s.enabled());
  EXPECT_EQ(s.scale(), 1.0);
  EXPECT_TRUE(s.update(kInf));
  EXPECT_EQ(s.skipped_steps(), 0);
}

TEST(GradScaler, RejectsBadOptions) {
  EXPECT_THROW(GradScaler({true, 0.0, 2.0, 0.5, 10}), Error);
  EXPECT_THROW(GradScaler({true, 1.0, 1.0, 0.5, 10}), Error);
  EXPECT_THROW(GradScaler({true, 1.0, 2.0, 1.5, 10}), Error);
  EXPECT_THROW(GradScaler({true, 1.0, 2.0, 0.5, 0}), Error);
}

// One step as the trainer runs it: scaled backward, unscale, norm, update, maybe AdamW.
struct Step {
  bool applied;
  double norm;
};
Step run_step(GradScaler& s, AdamW& opt, const std::vector<ParamRef>& refs, const Tensor& w) {
  Tensor p = refs[0].param;
  autograd::zero_grad(p);
  autograd::backward(autograd::scale(autograd::sum(autograd::mul(p, w)), s.scale()));
  s.unscale(refs);
  const double norm = clip_grad_norm(refs, 1e9);
  const bool applied = s.update(norm);
  if (applied) opt.step(1e-2);
  return {applied, norm};
}

TEST(GradScaler, SkipsTheUpdateWhenAGradientIsInfinite) {
  Tensor p = Tensor::from_vector<float>({1.0f, -2.0f, 3.0f}, {3});
  autograd::set_requires_grad(p);
  std::vector<ParamRef> refs{{"w", p, false}};
  AdamW opt(refs, {});
  GradScaler s({true, 1024.0, 2.0, 0.5, 2000});

  // Finite: d(sum p*w)/dp = w exactly (the scale is a power of two), and AdamW steps.
  const Tensor w = Tensor::from_vector<float>({0.5f, 0.25f, -1.0f}, {3});
  Step a = run_step(s, opt, refs, w);
  EXPECT_TRUE(a.applied);
  EXPECT_EQ(autograd::grad(p).to_vector<float>(), w.to_vector<float>());
  EXPECT_NEAR(a.norm, std::sqrt(0.25 + 0.0625 + 1.0), 1e-12);
  EXPECT_EQ(opt.steps(), 1);

  // Infinite gradient element: skipped, parameters untouched, scale halved.
  const std::vector<float> before = p.to_vector<float>();
  const Tensor bad = Tensor::from_vector<float>({0.5f, std::numeric_limits<float>::infinity(), 1.0f}, {3});
  Step b = run_step(s, opt, refs, bad);
  EXPECT_FALSE(b.applied);
  EXPECT_FALSE(std::isfinite(b.norm));
  EXPECT_EQ(p.to_vector<float>(), before);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.skipped_steps(), 1);

  // NaN (inf * 0 in the forward's gradient) is skipped the same way.
  const Tensor nan = Tensor::from_vector<float>({std::nanf(""), 0.0f, 1.0f}, {3});
  EXPECT_FALSE(run_step(s, opt, refs, nan).applied);
  EXPECT_EQ(s.scale(), 256.0);

  // Training continues with the smaller scale.
  EXPECT_TRUE(run_step(s, opt, refs, w).applied);
  EXPECT_EQ(opt.steps(), 2);
}

}  // namespace
}  // namespace ternion::optim

#include "train/update.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ternion::train {
namespace {

struct Fixture {
  Tensor a = Tensor::from_vector<float>({1.0f, 2.0f}, {2});
  Tensor b = Tensor::from_vector<float>({3.0f}, {1});
  std::vector<optim::ParamRef> refs() {
    autograd::set_requires_grad(a);
    autograd::set_requires_grad(b);
    return {{"a", a, true, true}, {"b", b, false, true}};
  }
  void backward(double ga, double gb) {
    autograd::zero_grad(a);
    autograd::zero_grad(b);
    autograd::backward(autograd::add(autograd::scale(autograd::sum(a), ga), autograd::scale(autograd::sum(b), gb)));
  }
};

TEST(OptimizerStep, ClipsByTheGlobalNormAndUpdates) {
  Fixture f;
  OptimConfig oc;
  oc.grad_clip = 1.0;
  double local_seen = -1;
  OptimizerStep u(f.refs(), oc, Precision{}, [&](double local) {
    local_seen = local;
    return local * 2;  // another rank holding an equal share
  });
  EXPECT_EQ(u.loss_scale(), 1.0);
  f.backward(3.0, 4.0);  // grads 3, 3, 4: local sum of squares 34
  const UpdateResult r = u.apply(0.1);
  EXPECT_DOUBLE_EQ(local_seen, 34.0);
  EXPECT_DOUBLE_EQ(r.grad_norm, std::sqrt(68.0));
  EXPECT_FALSE(r.skipped);
  EXPECT_EQ(r.loss_scale, 0.0);
  EXPECT_NE(f.a.to_vector<float>()[0], 1.0f);
  EXPECT_EQ(u.adamw().steps(), 1);
}

// With loss scaling, an inf gradient skips the update on every rank alike and halves the scale.
TEST(OptimizerStep, LossScalingSkipsNonFiniteSteps) {
  Fixture f;
  OptimConfig oc;
  OptimizerStep u(f.refs(), oc, Precision{DType::f32, true}, {});
  const double scale = u.loss_scale();
  EXPECT_GT(scale, 1.0);
  f.backward(std::numeric_limits<double>::infinity(), 1.0);
  const UpdateResult r = u.apply(0.1);
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(r.skipped_steps, 1);
  EXPECT_EQ(r.loss_scale, scale);
  EXPECT_EQ(u.loss_scale(), scale / 2);
  EXPECT_EQ(f.a.to_vector<float>()[0], 1.0f);  // not updated
  EXPECT_EQ(u.adamw().steps(), 0);
}

}  // namespace
}  // namespace ternion::train

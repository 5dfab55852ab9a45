#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ternion {
namespace {

TEST(Philox, MatchesPublishedKnownAnswer) {
  // Random123's kat_vectors for philox4x32_10: counter all ones, key all ones.
  PhiloxOut r = philox4x32(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
  PhiloxOut z = philox4x32(0, 0, 0);
  EXPECT_EQ(z.v[0], 0x6627e8d5u);
  EXPECT_EQ(z.v[1], 0xe169c58du);
  EXPECT_EQ(z.v[2], 0xbc57ac4cu);
  EXPECT_EQ(z.v[3], 0x9b00dbd8u);
}

TEST(Rng, NormalMoments) {
  Tensor t = Tensor::empty({100000}, DType::f64);
  init_normal(t, 7, "w", 1.0, 2.0);
  double s = 0, s2 = 0;
  for (double v : t.to_vector<double>()) {
    s += v;
    s2 += v * v;
  }
  const double mean = s / 1e5, var = s2 / 1e5 - mean * mean;
  EXPECT_NEAR(mean, 1.0, 0.03);
  EXPECT_NEAR(var, 4.0, 0.08);
}

TEST(Rng, DependsOnSeedAndName) {
  Tensor a = Tensor::empty({8}), b = Tensor::empty({8}), c = Tensor::empty({8}), d = Tensor::empty({8});
  init_normal(a, 1, "x", 0, 1);
  init_normal(b, 1, "x", 0, 1);
  init_normal(c, 2, "x", 0, 1);
  init_normal(d, 1, "y", 0, 1);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), d.to_vector<float>());
}

TEST(Rng, ShardEqualsSliceOfTheWholeTensor) {
  // What tensor parallelism relies on: a block initialised on its own equals the same
  // block of the unsharded tensor, whatever the split.
  Tensor full = Tensor::empty({6, 10});
  init_normal(full, 42, "transformer.h.0.attn.c_attn.weight", 0, 0.02);
  for (auto [r0, r1, c0, c1] : {std::array<int64_t, 4>{2, 4, 0, 10}, {0, 6, 3, 7}, {5, 6, 9, 10}}) {
    Tensor block = Tensor::empty({r1 - r0, c1 - c0});
    init_normal(block, 42, "transformer.h.0.attn.c_attn.weight", 0, 0.02, {6, 10}, {r0, c0});
    EXPECT_EQ(block.to_vector<float>(), full.slice(0, r0, r1).slice(1, c0, c1).to_vector<float>());
  }
  Tensor bad = Tensor::empty({4, 4});
  EXPECT_THROW(init_normal(bad, 42, "w", 0, 1, {6, 10}, {3, 0}), Error);
}

TEST(Rng, UniformIsInUnitInterval) {
  for (uint64_t i = 0; i < 1000; ++i) {
    float u = uniform_at(9, 3, i);
    EXPECT_GE(u, 0.0f);
    EXPECT_LT(u, 1.0f);
  }
}

}  // namespace
}  // namespace ternion

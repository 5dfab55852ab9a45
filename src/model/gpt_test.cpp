#include "model/gpt.h"

#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autograd.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace ternion::model {
namespace {

GptConfig tiny() {
  GptConfig c;
  c.vocab_size = 11;
  c.block_size = 5;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 4;
  return c;
}

Tensor ids(const std::vector<int32_t>& v, int64_t B, int64_t T) { return Tensor::from_vector(v, {B, T}); }

TEST(Gpt, NanoGptNamesAndShapes) {
  GptConfig c = tiny();
  Gpt g(c);
  const auto& p = g.parameters();
  ASSERT_EQ(p.size(), 2u + 12u * 2 + 2u);
  EXPECT_EQ(p[0].name, "transformer.wte.weight");
  EXPECT_EQ(p[0].tensor.shape(), (Shape{11, 4}));
  EXPECT_EQ(p[1].name, "transformer.wpe.weight");
  EXPECT_EQ(p[4].name, "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(p[4].tensor.shape(), (Shape{12, 4}));
  EXPECT_EQ(p[12].name, "transformer.h.0.mlp.c_proj.weight");
  EXPECT_EQ(p[12].tensor.shape(), (Shape{4, 16}));
  EXPECT_EQ(p.back().name, "transformer.ln_f.bias");
  EXPECT_TRUE(p[4].weight_decay);
  EXPECT_FALSE(p[5].weight_decay);  // biases and LayerNorm parameters are not decayed
}

TEST(Gpt, InitFollowsNanoGpt) {
  GptConfig c = tiny();
  c.n_embd = 64;
  c.n_head = 4;
  c.vocab_size = 512;
  Gpt g(c);
  g.init(1);
  auto stddev = [](const Tensor& t) {
    double s = 0, s2 = 0;
    auto v = t.to_vector<double>();
    for (double x : v) s += x, s2 += x * x;
    return std::sqrt(s2 / v.size() - (s / v.size()) * (s / v.size()));
  };
  for (const auto& p : g.parameters()) {
    if (p.name.find("c_proj.weight") != std::string::npos) {
      EXPECT_NEAR(stddev(p.tensor), 0.02 / std::sqrt(4.0), 0.003) << p.name;
    } else if (p.name == "transformer.wte.weight") {
      EXPECT_NEAR(stddev(p.tensor), 0.02, 0.001);
    } else if (p.name.find("ln_1.weight") != std::string::npos) {
      EXPECT_EQ(p.tensor.to_vector<float>(), std::vector<float>(64, 1.0f));
    } else if (p.name.find("bias") != std::string::npos) {
      EXPECT_EQ(p.tensor.to_vector<float>(), std::vector<float>(p.tensor.numel(), 0.0f));
    }
  }
  Gpt h(c);
  h.init(1);
  EXPECT_EQ(g.parameters()[0].tensor.to_vector<float>(), h.parameters()[0].tensor.to_vector<float>());
}

TEST(Gpt, InitialLossIsNearLogV) {
  GptConfig c = tiny();
  Gpt g(c);
  g.init(3);
  const double l = g.loss(ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5), ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, 2, 5)).item();
  EXPECT_NEAR(l, std::log(11.0), 0.05);
}

TEST(Gpt, WholeModelGradcheckF64) {
  GptConfig c = tiny();
  Gpt g(c);
  g.init(5);
  std::vector<Tensor> params;
  for (auto& p : g.parameters()) {
    p.tensor = p.tensor.to(DType::f64);
    autograd::set_requires_grad(p.tensor);
    params.push_back(p.tensor);
  }
  // Larger weights so every path matters at finite-difference precision.
  for (auto& t : params)
    for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] += 0.3 * std::sin(1.7 * i + t.numel());
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5), y = ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, 2, 5);
  auto r = autograd::gradcheck([&](const std::vector<Tensor>&) { return g.loss(x, y); }, params);
  EXPECT_TRUE(r.ok) << r.first_failure;
}

TEST(Gpt, ActivationCheckpointingIsBitIdentical) {
  for (double dropout : {0.0, 0.2}) {
    GptConfig c = tiny();
    c.dropout = dropout;
    Gpt a(c);
    a.init(7);
    c.checkpoint_activations = true;
    Gpt b(c);
    b.init(7);
    const Tensor x = ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5), y = ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, 2, 5);
    Tensor la = a.loss(x, y, 99, 3), lb = b.loss(x, y, 99, 3);
    EXPECT_EQ(la.item(), lb.item());
    autograd::backward(la);
    autograd::backward(lb);
    for (size_t i = 0; i < a.parameters().size(); ++i)
      EXPECT_EQ(autograd::grad(a.parameters()[i].tensor).to_vector<float>(),
                autograd::grad(b.parameters()[i].tensor).to_vector<float>())
          << a.parameters()[i].name;
  }
}

TEST(Gpt, BadSizesNameTheKey) {
  GptConfig c = tiny();
  c.n_embd = 5;
  try {
    Gpt g(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_embd (5) must be a positive multiple of model.n_head (2)"),
              std::string::npos);
  }
  Gpt g(tiny());
  g.init(1);
  EXPECT_THROW(g.loss(ids(std::vector<int32_t>(12, 1), 2, 6), ids(std::vector<int32_t>(12, 1), 2, 6)), Error);
  EXPECT_THROW(g.loss(ids({11, 1}, 1, 2), ids({1, 1}, 1, 2)), Error);  // token >= vocab
}

}  // namespace
}  // namespace ternion::model

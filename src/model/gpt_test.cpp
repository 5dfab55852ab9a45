#include "model/gpt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

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
  for (const auto& q : p) EXPECT_TRUE(q.is_whole() && q.primary && !q.tied_copy) << q.name;
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

// Selective and full recomputation, of every layer or only the first, give the bits of
// keeping everything: the loss and every gradient, with dropout on and off.
TEST(Gpt, ActivationCheckpointingIsBitIdentical) {
  using AC = ActivationCheckpointing;
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5), y = ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, 2, 5);
  for (double dropout : {0.0, 0.2}) {
    GptConfig c = tiny();
    c.n_layer = 3;
    c.dropout = dropout;
    Gpt ref(c);
    ref.init(7);
    Tensor want = ref.loss(x, y, 99, 3);
    autograd::backward(want);
    for (AC mode : {AC::kSelective, AC::kFull}) {
      for (int64_t layers : {0, 1}) {
        SCOPED_TRACE(testing::Message() << "dropout " << dropout << " mode " << static_cast<int>(mode) << " layers "
                                        << layers);
        c.activation_checkpointing = mode;
        c.checkpoint_layers = layers;
        Gpt g(c);
        g.init(7);
        Tensor got = g.loss(x, y, 99, 3);
        EXPECT_EQ(got.item(), want.item());
        autograd::backward(got);
        for (size_t i = 0; i < ref.parameters().size(); ++i)
          EXPECT_EQ(autograd::grad(g.parameters()[i].tensor).to_vector<float>(),
                    autograd::grad(ref.parameters()[i].tensor).to_vector<float>())
              << ref.parameters()[i].name;
      }
    }
  }
}

// The bytes one layer keeps for its backward are what docs/config.md states
// (train.activation_checkpointing), in f32: none 4·B·T·(17C + 4 + H), selective
// 4·B·T·(10C + 4 + H), full 4·B·T·C. Measured as the saved bytes after the forward of
// three layers less those of two; dropout on (its masks are recomputed, never kept).
TEST(Gpt, SavedBytesPerLayerAreTheStatedOnes) {
  using AC = ActivationCheckpointing;
  const int64_t B = 2, T = 5, C = 8, H = 2;
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, B, T), y = ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, B, T);
  const std::map<AC, int64_t> want = {{AC::kNone, 4 * B * T * (17 * C + 4 + H)},
                                      {AC::kSelective, 4 * B * T * (10 * C + 4 + H)},
                                      {AC::kFull, 4 * B * T * C}};
  for (const auto& [mode, bytes] : want) {
    auto held = [&, mode = mode](int64_t layers) {
      GptConfig c = tiny();
      c.n_embd = C;
      c.n_head = H;
      c.n_layer = layers;
      c.dropout = 0.2;
      c.activation_checkpointing = mode;
      Gpt g(c);
      g.init(3);
      const size_t base = autograd::saved_stats().bytes;
      Tensor loss = g.loss(x, y, 5, 1);
      return static_cast<int64_t>(autograd::saved_stats().bytes - base);
    };
    EXPECT_EQ(held(3) - held(2), bytes) << "mode " << static_cast<int>(mode);
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

// Every tp rank's and pipeline stage's parameters are exactly the matching boxes of the
// whole model's, initialised identically; names stay global; each element is primary on
// exactly one rank.
TEST(Gpt, ShardsHoldTheBoxesOfTheWholeModel) {
  GptConfig c = tiny();
  c.n_layer = 4;
  Gpt whole(c);
  whole.init(9);
  std::map<std::string, Tensor> full, covered;
  for (const auto& p : whole.parameters()) {
    full[p.name] = p.tensor;
    covered[p.name] = Tensor::zeros(p.global_shape);
  }
  for (int tp = 0; tp < 2; ++tp) {
    for (int stage = 0; stage < 2; ++stage) {
      GptShard s;
      s.first_layer = 2 * stage;
      s.num_layers = 2;
      s.embeddings = stage == 0;
      s.head = stage == 1;
      s.tp_rank = tp;
      s.tp_size = 2;
      Gpt g(c, s);
      g.init(9);
      EXPECT_FALSE(g.is_whole());
      for (const auto& p : g.parameters()) {
        const bool qkv = p.name.find("c_attn") != std::string::npos;
        EXPECT_EQ(p.boxes.size(), qkv ? 3u : 1u) << p.name;  // the q, k and v rows of its head
        EXPECT_EQ(p.tp_replicated, p.name.find("ln_") != std::string::npos || p.name.find("wpe") != std::string::npos ||
                                       p.name.find("c_proj.bias") != std::string::npos)
            << p.name;
      }
      EXPECT_EQ(g.num_parameters(), whole.num_parameters());
      for (const auto& p : g.parameters()) {
        if (stage == 1) {
          EXPECT_EQ(p.name.find("transformer.h.0."), std::string::npos) << p.name;
        }
        ASSERT_TRUE(full.count(p.name)) << p.name;
        Parameter want = p;
        want.tensor = Tensor::zeros(p.tensor.shape());  // the padding rows stay 0
        load_from_full(want, full[p.name]);
        EXPECT_EQ(p.tensor.to_vector<float>(), want.tensor.to_vector<float>()) << p.name;
        EXPECT_EQ(p.tied_copy, stage == 1 && p.name == "transformer.wte.weight") << p.name;
        if (!p.primary) continue;
        // Count how often each element is primary: marks are added, not overwritten.
        Parameter mark = p;
        mark.tensor = Tensor::full(p.tensor.shape(), 1.0);
        Tensor mask = Tensor::zeros(p.global_shape);
        store_into_full(mark, mask);
        auto now = covered[p.name].to_vector<float>();
        const auto m = mask.to_vector<float>();
        for (size_t i = 0; i < now.size(); ++i) now[i] += m[i];
        covered[p.name] = Tensor::from_vector(now, p.global_shape);
      }
    }
  }
  for (const auto& [name, t] : covered)
    EXPECT_EQ(t.to_vector<float>(), std::vector<float>(t.numel(), 1.0f)) << name << " is not covered once";
}

// Two pipeline stages compose to the whole model: same loss bit for bit (dropout on), and
// the gradients of the whole model (wte: the first stage's plus the last stage's tied copy).
TEST(Gpt, StagesComposeToTheWholeModel) {
  GptConfig c = tiny();
  c.n_layer = 3;
  c.dropout = 0.2;
  Gpt whole(c);
  whole.init(4);
  Gpt first(c, {.first_layer = 0, .num_layers = 1, .embeddings = true, .head = false});
  Gpt last(c, {.first_layer = 1, .num_layers = 2, .embeddings = false, .head = true});
  first.init(4);
  last.init(4);
  const Tensor x = ids({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5), y = ids({2, 3, 4, 5, 6, 7, 8, 9, 10, 0}, 2, 5);
  const DropoutContext d{77, 5, 3, true};
  Tensor lw = whole.loss(x, y, d.key, d.step, d.sample_offset);
  Tensor act = first.blocks(first.embed(x, d), d);
  Tensor lp = last.head_loss(last.blocks(act, d), y);
  EXPECT_EQ(lw.item(), lp.item());
  autograd::backward(lw);
  autograd::backward(lp);
  std::map<std::string, std::vector<float>> got;
  for (const Gpt* g : {&first, &last}) {
    for (const auto& p : g->parameters()) {
      auto v = autograd::grad(p.tensor).to_vector<float>();
      auto& acc = got[p.name];
      if (acc.empty()) acc.assign(v.size(), 0.0f);
      for (size_t i = 0; i < v.size(); ++i) acc[i] += v[i];
    }
  }
  ASSERT_EQ(got.size(), whole.parameters().size());
  for (const auto& p : whole.parameters()) {
    const auto want = autograd::grad(p.tensor).to_vector<float>();
    ASSERT_EQ(got[p.name].size(), want.size()) << p.name;
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[p.name][i], want[i], 1e-6) << p.name << " " << i;
  }
  EXPECT_THROW(first.loss(x, y), Error);  // a stage is not the whole model
  // Without an active context there is no dropout (evaluation): the loss differs from the
  // training loss and does not depend on the sample offset.
  EXPECT_NE(whole.loss(x, y).item(), lw.item());
  EXPECT_EQ(whole.loss(x, y).item(), whole.loss(x, y, DropoutContext{77, 5, 3, false}).item());
  EXPECT_THROW(last.embed(x), Error);
}

// Dropout masks follow the global sample: a batch of 4 split into two micro-batches of 2
// (samples 0-1 at offset 0, 2-3 at offset 2) draws the masks of the whole batch.
TEST(Gpt, DropoutMasksFollowTheGlobalSample) {
  GptConfig c = tiny();
  c.dropout = 0.3;
  Gpt g(c);
  g.init(2);
  std::vector<int32_t> xi, yi;
  for (int i = 0; i < 20; ++i) {
    xi.push_back((i * 3 + 1) % 11);
    yi.push_back((i * 5 + 2) % 11);
  }
  const Tensor x = ids(xi, 4, 5), y = ids(yi, 4, 5);
  const double all = g.loss(x, y, 5, 1, 0).item();
  const auto half = [&](int h) {
    std::vector<int32_t> a(xi.begin() + 10 * h, xi.begin() + 10 * (h + 1)), b(yi.begin() + 10 * h, yi.begin() + 10 * (h + 1));
    return g.loss(ids(a, 2, 5), ids(b, 2, 5), 5, 1, 2 * h).item();
  };
  EXPECT_NEAR((half(0) + half(1)) / 2, all, 1e-6 * all);
  // The offset matters: the second half drawn at offset 0 gets other masks.
  std::vector<int32_t> a(xi.begin() + 10, xi.end()), b(yi.begin() + 10, yi.end());
  EXPECT_NE(g.loss(ids(a, 2, 5), ids(b, 2, 5), 5, 1, 0).item(), half(1));
}

TEST(Gpt, BadShardsNameTheProblem) {
  GptConfig c = tiny();
  EXPECT_THROW(Gpt(c, {.first_layer = 1, .num_layers = 2}), Error);
  EXPECT_THROW(Gpt(c, {.tp_rank = 2, .tp_size = 2}), Error);
  c.n_head = 2;
  EXPECT_THROW(Gpt(c, {.tp_rank = 0, .tp_size = 4}), Error);  // heads not divisible
}

TEST(Gpt, ParameterCountIsTheWholeModels) {
  GptConfig c = tiny();
  Gpt g(c);
  int64_t n = 0;
  for (const auto& p : g.parameters()) n += shape_numel(p.global_shape);
  EXPECT_EQ(g.num_parameters(), n);
  EXPECT_EQ(g.num_local_elements(), n);
}

}  // namespace
}  // namespace ternion::model

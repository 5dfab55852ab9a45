#include "train/model_shard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint/weights_file.h"

namespace ternion::train {
namespace {

Config tiny() {
  Config c;
  c.model.vocab_size = 32;
  c.model.block_size = 8;
  c.model.n_layer = 4;
  c.model.n_head = 2;
  c.model.n_embd = 8;
  c.run.seed = 3;
  return c;
}

// The interleaved schedule: stage s of 2 with 2 chunks of one layer holds layers s and s + 2,
// and its Gpt runs them one chunk at a time.
TEST(ModelShard, InterleavedStagesHoldNonContiguousChunks) {
  const ModelConfig m = tiny().model;  // 4 layers
  const parallel::Layout l{.dp = 1, .tp = 1, .pp = 2};
  for (int s = 0; s < 2; ++s) {
    const model::GptShard shard = shard_for(m, l, {.pp = s}, {}, 2);
    EXPECT_EQ(shard.first_layer, s);
    EXPECT_EQ(shard.num_layers, 1);
    EXPECT_EQ(shard.chunks, 2);
    EXPECT_EQ(shard.chunk_stride, 2);
    model::GptConfig g;
    g.vocab_size = m.vocab_size;
    g.block_size = m.block_size;
    g.n_layer = m.n_layer;
    g.n_head = m.n_head;
    g.n_embd = m.n_embd;
    const model::Gpt gpt(g, shard);
    std::vector<std::string> layers;
    for (const auto& p : gpt.parameters())
      if (p.name.ends_with("attn.c_attn.weight")) layers.push_back(p.name);
    EXPECT_EQ(layers, (std::vector<std::string>{"transformer.h." + std::to_string(s) + ".attn.c_attn.weight",
                                                "transformer.h." + std::to_string(s + 2) + ".attn.c_attn.weight"}));
    EXPECT_FALSE(gpt.holds_all_layers());
    EXPECT_THROW(gpt.blocks(Tensor::zeros({1, 4, g.n_embd})), Error) << "non-contiguous chunks run one at a time";
  }
  EXPECT_THROW(shard_for(m, l, {.pp = 0}, {}, 3), Error);  // 4 layers do not split into 2 x 3 chunks
}

TEST(ModelShard, StagesSplitTheLayersEvenly) {
  const ModelConfig m = tiny().model;
  parallel::Layout l{.dp = 1, .tp = 2, .pp = 2};
  const model::GptShard first = shard_for(m, l, {.dp = 0, .tp = 1, .pp = 0});
  EXPECT_EQ(first.first_layer, 0);
  EXPECT_EQ(first.num_layers, 2);
  EXPECT_TRUE(first.embeddings);
  EXPECT_FALSE(first.head);
  EXPECT_EQ(first.tp_rank, 1);
  EXPECT_EQ(first.tp_size, 2);
  const model::GptShard last = shard_for(m, l, {.dp = 0, .tp = 0, .pp = 1});
  EXPECT_EQ(last.first_layer, 2);
  EXPECT_FALSE(last.embeddings);
  EXPECT_TRUE(last.head);
  l.pp = 4;
  for (int s = 0; s < 4; ++s) EXPECT_EQ(shard_for(m, l, {.pp = s}).first_layer, s);
  l.pp = 3;
  EXPECT_THROW(shard_for(m, l, {}), Error);  // 4 layers over 3 stages ...
  const std::vector<int> sizes = {1, 2, 1};  // ... unless the stages are given
  EXPECT_EQ(shard_for(m, l, {.pp = 1}, sizes).first_layer, 1);
  EXPECT_EQ(shard_for(m, l, {.pp = 1}, sizes).num_layers, 2);
  EXPECT_EQ(shard_for(m, l, {.pp = 2}, sizes).first_layer, 3);
  EXPECT_TRUE(shard_for(m, l, {.pp = 2}, sizes).head);
}

// init_from into a shard holds exactly that shard's boxes of the file's whole tensors,
// and a seeded init is the same on every layout.
TEST(ModelShard, InitFromAndSeedAgreeWithTheWholeModel) {
  auto ctx = parallel::ParallelContext::single();
  Config c = tiny();
  ctx->layout = parallel::Layout{};
  const auto whole = build_model(c, *ctx, DType::f32);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ternion_shard_" + std::to_string(::getpid()) + ".h5")).string();
  std::vector<checkpoint::NamedTensor> named;
  for (auto& p : whole->parameters()) {
    Tensor t = p.tensor.clone();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] += 0.5f;  // differs from the seeded init
    named.push_back({p.name, t});
  }
  checkpoint::write_weights(path, named, {});
  ctx->layout = parallel::Layout{.dp = 1, .tp = 2, .pp = 2};
  ctx->coord = {.dp = 0, .tp = 1, .pp = 1};
  const auto seeded = build_model(c, *ctx, DType::f32);
  c.model.init_from = path;
  const auto loaded = build_model(c, *ctx, DType::f32);
  std::filesystem::remove(path);
  ASSERT_EQ(seeded->parameters().size(), loaded->parameters().size());
  for (size_t i = 0; i < loaded->parameters().size(); ++i) {
    const model::Parameter& p = loaded->parameters()[i];
    const auto it = std::find_if(named.begin(), named.end(), [&](const auto& n) { return n.name == p.name; });
    ASSERT_NE(it, named.end()) << p.name;
    model::Parameter want = p;
    want.tensor = Tensor::zeros(p.tensor.shape());  // the padding rows stay 0
    model::load_from_full(want, it->tensor);
    EXPECT_EQ(p.tensor.to_vector<float>(), want.tensor.to_vector<float>()) << p.name;
    const auto w = std::find_if(whole->parameters().begin(), whole->parameters().end(),
                                [&](const auto& q) { return q.name == p.name; });
    model::load_from_full(want, w->tensor);
    EXPECT_EQ(seeded->parameters()[i].tensor.to_vector<float>(), want.tensor.to_vector<float>()) << p.name;
  }
}

}  // namespace
}  // namespace ternion::train

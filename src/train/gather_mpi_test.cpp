// Whole weights gathered from a sharded model, under mpirun: with 2 ranks two pipeline
// stages, with 4 ranks 2 tp ranks x 2 stages. World rank 0 must receive exactly the whole
// model's tensors (the seeded init of a one-process model), every box from its holder.
#include <gtest/gtest.h>

#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "train/gather.h"
#include "train/model_shard.h"

namespace ternion::train {
namespace {

Config tiny() {
  Config c;
  c.model.vocab_size = 30;  // not a multiple of tp: uneven vocabulary boxes
  c.model.block_size = 8;
  c.model.n_layer = 4;
  c.model.n_head = 2;
  c.model.n_embd = 8;
  c.run.seed = 8;
  return c;
}

TEST(GatherWholeWeights, ShardsReassembleTheWholeModel) {
  parallel::Runtime& rt = parallel::testing::runtime();
  ASSERT_TRUE(rt.size() == 2 || rt.size() == 4) << "run with 2 or 4 ranks";
  const parallel::Layout layout = parallel::resolve_layout(1, rt.size() / 2, 2, "tp-dp-pp", rt.size());
  auto ctx = parallel::ParallelContext::create(rt, layout);
  const Config c = tiny();
  const auto shard = build_model(c, *ctx, DType::f32);
  EXPECT_FALSE(shard->is_whole());
  const std::vector<checkpoint::NamedTensor> got = gather_whole_weights(*shard, *ctx);
  if (ctx->rank != 0) {
    EXPECT_TRUE(got.empty());
    return;
  }
  model::Gpt whole(gpt_config(c, Device::cpu(), DType::f32));
  whole.init(static_cast<uint64_t>(c.run.seed));
  ASSERT_EQ(got.size(), whole.parameters().size());
  for (size_t i = 0; i < got.size(); ++i) {
    const model::Parameter& p = whole.parameters()[i];
    EXPECT_EQ(got[i].name, p.name);  // pipeline-stage order is the whole model's order
    EXPECT_EQ(got[i].tensor.to_vector<float>(), p.tensor.to_vector<float>()) << p.name;
  }
}

}  // namespace
}  // namespace ternion::train

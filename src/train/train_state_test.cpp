#include "train/train_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "data/token_file.h"
#include "train/model_shard.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

class TrainStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ternion_state_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<int32_t> tokens(500);
    for (int i = 0; i < 500; ++i) tokens[i] = i % 31;
    data::write_token_file((dir_ / "t.h5").string(), tokens, 32, "test");
    c_.run.dir = (dir_ / "run").string();
    c_.model.vocab_size = 32;
    c_.model.block_size = 8;
    c_.model.n_layer = 2;
    c_.model.n_head = 2;
    c_.model.n_embd = 8;
    c_.run.seed = 21;
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Shard {
    std::unique_ptr<parallel::ParallelContext> ctx = parallel::ParallelContext::single();
    std::unique_ptr<model::Gpt> gpt;
    std::unique_ptr<OptimizerStep> update;
  };
  Shard shard(const parallel::Layout& l, const parallel::Coord& coord, bool loss_scaling = false) {
    Shard s;
    s.ctx->layout = l;
    s.ctx->coord = coord;
    s.gpt = build_model(c_, *s.ctx, DType::f32);
    s.update = std::make_unique<OptimizerStep>(param_refs(*s.gpt), c_.optim, Precision{DType::f32, loss_scaling},
                                               std::function<double(double)>{});
    return s;
  }
  data::BatchSampler sampler() {
    data::SamplerOptions so;
    so.block_size = 8;
    so.global_batch = 2;
    return data::BatchSampler(data::open_token_source((dir_ / "t.h5").string(), {}), so);
  }
  // Saves the union of what the given shards stage as one checkpoint at step 5, in one
  // rank file (so each shard's datasets get a distinct "@<k>" suffix, as FORMAT.md allows).
  std::string save(std::vector<Shard>& shards) {
    checkpoint::State all;
    for (size_t i = 0; i < shards.size(); ++i) {
      auto& s = shards[i];
      checkpoint::State st = stage_state(c_, *s.gpt, *s.update, 5, {5, 10}, *s.ctx);
      if (i == 0) {
        all = std::move(st);
      } else {
        for (auto& e : st.tensors) {
          e.name += "@s" + std::to_string(i);
          all.tensors.push_back(std::move(e));
        }
      }
    }
    checkpoint::Checkpointer ck(c_.run.dir, checkpoint::Group::local(), {false, 2});
    ck.save(std::move(all));
    ck.finish();
    return checkpoint::latest_checkpoint(c_.run.dir);
  }
  fs::path dir_;
  Config c_;
};

// A checkpoint written by the four shards of tp=2 x pp=2 loads into the whole model, and
// the whole model's into any shard: the boxes meet whatever layout wrote them.
TEST_F(TrainStateTest, ShardedStateReassemblesUnderAnotherLayout) {
  const parallel::Layout l{.dp = 1, .tp = 2, .pp = 2};
  std::vector<Shard> shards;
  for (int pp = 0; pp < 2; ++pp)
    for (int tp = 0; tp < 2; ++tp) shards.push_back(shard(l, {.dp = 0, .tp = tp, .pp = pp}));
  for (auto& s : shards)  // distinct values: offset each by its place, except replicas
    for (auto& p : s.gpt->parameters())
      for (int64_t i = 0; i < p.tensor.numel(); ++i) p.tensor.data<float>()[i] += 0.25f;
  const std::string dir = save(shards);
  ASSERT_FALSE(dir.empty());
  Shard whole = shard({}, {});
  Shard want = shard({}, {});
  for (auto& p : want.gpt->parameters())
    for (int64_t i = 0; i < p.tensor.numel(); ++i) p.tensor.data<float>()[i] += 0.25f;
  auto s = sampler();
  std::ostringstream log;
  const LoadResult r = load_state(dir, c_, *whole.gpt, *whole.update, s, {}, log, log);
  ASSERT_EQ(r.status, LoadResult::Status::kOk) << r.message;
  EXPECT_EQ(r.step, 5);
  for (size_t i = 0; i < whole.gpt->parameters().size(); ++i)
    EXPECT_EQ(whole.gpt->parameters()[i].tensor.to_vector<float>(), want.gpt->parameters()[i].tensor.to_vector<float>())
        << whole.gpt->parameters()[i].name;
  // And back: the whole model's checkpoint into the last stage's tp rank 1, tied copy included.
  fs::remove_all(c_.run.dir);
  std::vector<Shard> one;
  one.push_back(std::move(want));
  const std::string dir2 = save(one);
  Shard last = shard(l, {.dp = 0, .tp = 1, .pp = 1});
  ASSERT_EQ(load_state(dir2, c_, *last.gpt, *last.update, s, {}, log, log).status, LoadResult::Status::kOk);
  for (const auto& p : last.gpt->parameters()) {
    const auto& w = *std::find_if(one[0].gpt->parameters().begin(), one[0].gpt->parameters().end(),
                                  [&](const auto& q) { return q.name == p.name; });
    model::Parameter box = p;
    box.tensor = Tensor::zeros(p.tensor.shape());  // the padding rows stay 0
    model::load_from_full(box, w.tensor);
    EXPECT_EQ(p.tensor.to_vector<float>(), box.tensor.to_vector<float>()) << p.name;
  }
}

// The loss scaler's state is part of a checkpoint, so an fp16 resume is exact.
TEST_F(TrainStateTest, LossScalerStateIsSavedAndRestored) {
  std::vector<Shard> shards;
  shards.push_back(shard({}, {}, true));
  shards[0].update->scaler().set_state(1024.0 * 3, 17, 4);
  const std::string dir = save(shards);
  Shard fresh = shard({}, {}, true);
  auto s = sampler();
  std::ostringstream log;
  ASSERT_EQ(load_state(dir, c_, *fresh.gpt, *fresh.update, s, {}, log, log).status, LoadResult::Status::kOk);
  EXPECT_EQ(fresh.update->scaler().scale(), 1024.0 * 3);
  EXPECT_EQ(fresh.update->scaler().good_steps(), 17);
  EXPECT_EQ(fresh.update->scaler().skipped_steps(), 4);
  EXPECT_EQ(s.get_state().step, 5);
  EXPECT_EQ(s.get_state().sample, 10);
}

// Resuming onto other training data works, with a warning naming both files.
TEST_F(TrainStateTest, OtherTrainingDataIsAWarning) {
  std::vector<Shard> shards;
  shards.push_back(shard({}, {}));
  c_.data.train = "first.h5";
  const std::string dir = save(shards);
  c_.data.train = "second.h5";
  Shard again = shard({}, {});
  auto s = sampler();
  std::ostringstream log, warn;
  ASSERT_EQ(load_state(dir, c_, *again.gpt, *again.update, s, {}, log, warn).status, LoadResult::Status::kOk);
  EXPECT_NE(warn.str().find("trained on data.train 'first.h5'; this run continues on 'second.h5'"), std::string::npos)
      << warn.str();
  EXPECT_EQ(log.str().find("warning"), std::string::npos);
}

// Another model is incompatible (resume never skips it); a missing directory is damage.
TEST_F(TrainStateTest, StatusSaysIncompatibleOrDamaged) {
  std::vector<Shard> shards;
  shards.push_back(shard({}, {}));
  const std::string dir = save(shards);
  c_.model.n_head = 4;
  Shard other = shard({}, {});
  auto s = sampler();
  std::ostringstream log;
  const LoadResult r = load_state(dir, c_, *other.gpt, *other.update, s, {}, log, log);
  EXPECT_EQ(r.status, LoadResult::Status::kIncompatible);
  EXPECT_NE(r.message.find("model.n_head = 2"), std::string::npos) << r.message;
  EXPECT_EQ(load_state((dir_ / "nope").string(), c_, *other.gpt, *other.update, s, {}, log, log).status,
            LoadResult::Status::kDamaged);
}

}  // namespace
}  // namespace ternion::train

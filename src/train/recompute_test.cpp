// train.activation_checkpointing through train::train, in one process: selective and full
// (all layers, and the first two of four) train the same model as none bit for bit over
// 20 steps with dropout 0.1 and two micro-batches of accumulation, and memory.json's
// activations_peak orders none > selective > full, none exceeding selective by exactly
// the L·4·B·T·7C bytes docs/config.md says selective spares.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "data/token_file.h"
#include "train/trainer.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

class RecomputeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ternion_recompute_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 6000; ++i) tokens.push_back((i * 7 + (i / 13) % 5) % 40);
    data::write_token_file((dir_ / "train.h5").string(), tokens, 64, "test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config config(const std::string& mode, int layers) const {
    Config c;
    c.run.dir = (dir_ / (mode + std::to_string(layers))).string();
    c.run.seed = 3;
    c.model.vocab_size = 64;
    c.model.block_size = 16;
    c.model.n_layer = kLayers;
    c.model.n_head = kHeads;
    c.model.n_embd = kEmbd;
    c.model.dropout = 0.1;
    c.data.train = (dir_ / "train.h5").string();
    c.data.shuffle = true;
    c.train.steps = 20;
    c.train.global_batch_size = 2 * kMicro;
    c.train.micro_batch_size = kMicro;
    c.train.activation_checkpointing = mode;
    c.train.checkpoint_layers = layers;
    c.optim.lr = 3e-3;
    c.optim.warmup_steps = 3;
    c.optim.grad_clip = 0.5;
    c.log.interval = 100;
    return c;
  }
  TrainSummary run(const Config& c) const {
    std::ostringstream log;
    return train(c, log);
  }
  static int64_t activations_peak(const Config& c) {
    const testing::Json m = testing::Json::parse_file((fs::path(c.run.dir) / "memory.json").string());
    return static_cast<int64_t>(m["ranks"][0]["activations_peak"].number);
  }

  static constexpr int kLayers = 4, kHeads = 2, kEmbd = 32, kMicro = 4, kTokens = 16;
  fs::path dir_;
};

TEST_F(RecomputeTest, EveryModeTrainsTheSameBitsAndKeepsLess) {
  const Config none = config("none", 0);
  const TrainSummary want = run(none);
  ASSERT_EQ(want.steps.size(), 20u);
  std::map<std::string, int64_t> peak{{"none", activations_peak(none)}};
  for (const auto& [mode, layers] : std::vector<std::pair<std::string, int>>{{"selective", 0}, {"full", 0}, {"full", 2}}) {
    SCOPED_TRACE(mode + " of " + (layers ? std::to_string(layers) : std::string("all")) + " layers");
    const Config c = config(mode, layers);
    const TrainSummary got = run(c);
    ASSERT_EQ(got.steps.size(), want.steps.size());
    for (size_t i = 0; i < got.steps.size(); ++i) {
      EXPECT_EQ(got.steps[i].loss, want.steps[i].loss) << "step " << i + 1;
      EXPECT_EQ(got.steps[i].grad_norm, want.steps[i].grad_norm) << "step " << i + 1;
    }
    EXPECT_EQ(got.param_hashes, want.param_hashes);
    EXPECT_EQ(got.memory.activations_peak, activations_peak(c));
    peak[mode + std::to_string(layers)] = activations_peak(c);
  }
  EXPECT_GT(peak["none"], peak["selective0"]);
  EXPECT_GT(peak["selective0"], peak["full0"]);
  EXPECT_GT(peak["full2"], peak["full0"]);
  EXPECT_LT(peak["full2"], peak["none"]);
  // The forward's end is the peak of none and selective (the backward only releases, or
  // restores one tensor after the head's are gone): they differ by the spared tensors.
  const int64_t B = kMicro, T = kTokens, C = kEmbd, L = kLayers;
  EXPECT_EQ(peak["none"] - peak["selective0"], L * 4 * B * T * 7 * C);
}

}  // namespace
}  // namespace ternion::train

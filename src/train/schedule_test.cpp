#include "train/schedule.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "autograd/autograd.h"
#include "data/token_file.h"

namespace ternion::train {
namespace {

// Records the calls a schedule makes.
class RecordingSync final : public GradSync {
 public:
  void begin_backward(bool last) override { calls += last ? "L" : "b"; }
  void finish() override { calls += "F"; }
  double wait_ms() const override { return 0; }
  std::string calls;
};

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("ternion_schedule_" + std::to_string(::getpid()) + ".h5");
    std::vector<int32_t> tokens;
    for (int i = 0; i < 2000; ++i) tokens.push_back((i * 7 + (i / 11) % 3) % 29);
    data::write_token_file(path_.string(), tokens, 32, "test");
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // The gradients after one step of 8 samples in micro-batches of `micro`, dropout on.
  std::vector<std::vector<float>> grads(int64_t micro, std::string* calls) {
    model::GptConfig c;
    c.vocab_size = 32;
    c.block_size = 8;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 16;
    c.dropout = 0.1;
    model::Gpt gpt(c);
    gpt.init(1);
    data::SamplerOptions so;
    so.block_size = 8;
    so.global_batch = 8;
    so.shuffle = true;
    so.seed = 4;
    data::BatchSampler sampler(data::open_token_source(path_.string(), {}), so);
    SequentialSchedule schedule(gpt, sampler, micro);
    RecordingSync sync;
    StepWork w;
    w.step = 3;
    w.micro_batch_size = micro;
    w.micro_batches = 8 / micro;
    w.dropout_key = 99;
    loss_ = schedule.run(w, sync);
    *calls = sync.calls;
    std::vector<std::vector<float>> out;
    for (auto& p : gpt.parameters()) out.push_back(autograd::grad(p.tensor).to_vector<float>());
    return out;
  }
  std::filesystem::path path_;
  double loss_ = 0;
};

// The same step in 1, 2 or 4 micro-batches: the same loss and gradients (dropout masks
// follow the global sample), and the sync told which backward is the last.
TEST_F(ScheduleTest, MicroBatchSplitDoesNotChangeTheStep) {
  std::string calls;
  const auto whole = grads(8, &calls);
  const double whole_loss = loss_;
  EXPECT_EQ(calls, "LF");
  for (int64_t micro : {4, 2}) {
    const auto g = grads(micro, &calls);
    EXPECT_EQ(calls, std::string(static_cast<size_t>(8 / micro - 1), 'b') + "LF");
    EXPECT_NEAR(loss_, whole_loss, 1e-6 * whole_loss) << micro;
    for (size_t i = 0; i < g.size(); ++i)
      for (size_t j = 0; j < g[i].size(); ++j)
        ASSERT_NEAR(g[i][j], whole[i][j], 1e-5 + 1e-4 * std::abs(whole[i][j])) << "param " << i << " micro " << micro;
  }
}

}  // namespace
}  // namespace ternion::train

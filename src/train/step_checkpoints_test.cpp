#include "train/step_checkpoints.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

TEST(StepCheckpoints, SaveIsDueAtIntervalsTheLastStepAndStops) {
  EXPECT_FALSE(save_due(0, 4, false, false));
  EXPECT_TRUE(save_due(3, 4, false, false));   // after step 4
  EXPECT_TRUE(save_due(5, 4, true, false));    // the last step, when saving at all
  EXPECT_FALSE(save_due(5, 0, true, false));   // interval 0: never ...
  EXPECT_TRUE(save_due(2, 0, false, true));    // ... but a stop always saves
}

class StepCheckpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.run.dir = (fs::temp_directory_path() / ("ternion_stepck_" + std::to_string(::getpid()))).string();
    fs::remove_all(config_.run.dir);
    config_.checkpoint.interval = 2;
    config_.checkpoint.async = false;
  }
  void TearDown() override { fs::remove_all(config_.run.dir); }
  static checkpoint::State state(int64_t step) {
    checkpoint::State s;
    s.step = step;
    s.tensors.push_back(checkpoint::whole("param/w", Tensor::full({2}, 1.0)));
    return s;
  }
  Config config_;
  std::unique_ptr<parallel::ParallelContext> ctx_ = parallel::ParallelContext::single();
};

// Weights that are not finite are never saved: the save throws and the last checkpoint
// stays the latest.
TEST_F(StepCheckpointsTest, NonFiniteWeightsAreNotSaved) {
  StepCheckpoints ck(config_, *ctx_, 0);
  ck.end_of_step(1, false, [] { return state(2); }, [] { return true; });
  const std::string first = checkpoint::latest_checkpoint(config_.run.dir);
  ASSERT_EQ(fs::path(first).filename(), "step_00000002");
  try {
    ck.end_of_step(3, false, [] { return state(4); }, [] { return false; });
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weights are not finite after step 4"), std::string::npos) << e.what();
  }
  EXPECT_EQ(checkpoint::latest_checkpoint(config_.run.dir), first);
}

// A first SIGINT is a preemption (reported with its number); a second ends the process.
TEST_F(StepCheckpointsTest, FirstInterruptStopsWithACheckpointSecondKills) {
  {
    StepCheckpoints ck(config_, *ctx_, 0);
    std::raise(SIGINT);
    const auto o = ck.end_of_step(0, false, [] { return state(1); });
    EXPECT_TRUE(o.stop);
    EXPECT_TRUE(o.preempted);
    EXPECT_EQ(o.signal, SIGINT);
    EXPECT_EQ(fs::path(checkpoint::latest_checkpoint(config_.run.dir)).filename(), "step_00000001");
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StepCheckpoints ck(config_, *ctx_, 0);
        std::raise(SIGINT);
        std::raise(SIGINT);
        std::exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGINT), "");
}

}  // namespace
}  // namespace ternion::train

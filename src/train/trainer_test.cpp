#include "train/trainer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <thread>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "core/error.h"
#include "data/token_file.h"
#include "train/run_lock.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_trainer_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A corpus with structure to learn: a repeating pattern with some variation.
    std::vector<int32_t> tokens;
    for (int i = 0; i < 6000; ++i) tokens.push_back((i * 7 + (i / 13) % 5) % 40);
    data::write_token_file((dir_ / "train.h5").string(), tokens, 64, "test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config config(const std::string& run) const {
    Config c;
    c.run.dir = (dir_ / run).string();
    c.run.seed = 5;
    c.model.vocab_size = 64;
    c.model.block_size = 16;
    c.model.n_layer = 2;
    c.model.n_head = 2;
    c.model.n_embd = 16;
    c.data.train = (dir_ / "train.h5").string();
    c.data.val = "";
    c.data.shuffle = true;
    c.train.steps = 12;
    c.train.global_batch_size = 4;
    c.train.micro_batch_size = 2;  // two micro-batches of accumulation
    c.optim.lr = 3e-3;
    c.optim.warmup_steps = 3;
    c.log.interval = 100;
    c.checkpoint.interval = 4;
    return c;
  }
  static TrainSummary run(const Config& c, TrainOptions o = {}) {
    std::ostringstream log;
    return train(c, log, o);
  }
  fs::path dir_;
};

// What tensor parallelism demands of the model is checked with the layout, before any
// communicator exists: one error listing every broken rule with its keys and values.
TEST_F(TrainerTest, TensorParallelLayoutRulesNameTheKeys) {
  Config c = config("tp_rules");
  c.parallel.tp = 4;
  c.model.n_head = 2;
  c.model.vocab_size = 3;
  c.model.block_size = 10;
  c.parallel.sequence_parallel = true;
  try {
    resolve_layout(c, 4);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.n_head = 2 is not divisible by parallel.tp = 4"), std::string::npos) << m;
    EXPECT_NE(m.find("model.vocab_size = 3 is smaller than parallel.tp = 4"), std::string::npos) << m;
    EXPECT_NE(m.find("parallel.sequence_parallel: true"), std::string::npos) << m;
    EXPECT_NE(m.find("model.block_size = 10 must be divisible by parallel.tp = 4"), std::string::npos) << m;
  }
  c.model.n_head = 4;
  c.model.vocab_size = 64;
  c.model.block_size = 16;
  EXPECT_EQ(resolve_layout(c, 8).tp, 4) << "the same config fits once the sizes do";
  c.parallel.tp = 1;
  c.model.block_size = 10;
  EXPECT_EQ(resolve_layout(c, 1).tp, 1) << "sequence parallelism asks nothing at tp = 1";
}

TEST_F(TrainerTest, InterleavedScheduleRulesNameTheKeys) {
  Config c = config("interleaved_rules");
  c.model.n_layer = 6;
  c.parallel.pp = 2;
  c.parallel.pp_schedule = "interleaved";
  c.parallel.virtual_stages = 2;  // 6 layers are not 2 x 2 chunks
  c.train.global_batch_size = 6;
  c.train.micro_batch_size = 2;  // m = 3, not divisible by 2
  try {
    resolve_layout(c, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.n_layer = 6 is not divisible by parallel.pp · parallel.virtual_stages = 2 · 2"),
              std::string::npos) << m;
    EXPECT_NE(m.find("m = global_batch_size / (micro_batch_size · dp) = 3, divisible by parallel.pp = 2"),
              std::string::npos) << m;
  }
  c.parallel.pp_schedule = "1f1b";
  try {
    resolve_layout(c, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.virtual_stages = 2 needs parallel.pp_schedule: interleaved"),
              std::string::npos) << e.what();
  }
  c.parallel.pp_schedule = "interleaved";
  c.model.n_layer = 8;
  c.train.global_batch_size = 8;
  EXPECT_EQ(resolve_layout(c, 2).pp, 2);
}

TEST_F(TrainerTest, ResumedRunContinuesBitIdentically) {
  for (bool async : {true, false}) {
    Config a = config(async ? "a_async" : "a_sync");
    a.checkpoint.async = async;
    const TrainSummary full = run(a);
    ASSERT_EQ(full.steps.size(), 12u);
    EXPECT_LT(full.steps.back().loss, full.steps.front().loss);

    Config b = config(async ? "b_async" : "b_sync");
    b.checkpoint.async = async;
    TrainOptions stop;
    stop.stop_at_step = 6;  // between checkpoint intervals: the stop saves its own
    const TrainSummary first = run(b, stop);
    EXPECT_TRUE(first.stopped);
    ASSERT_EQ(first.steps.size(), 6u);
    const TrainSummary rest = run(b);  // --resume auto
    EXPECT_EQ(rest.start_step, 6);
    ASSERT_EQ(rest.steps.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
      EXPECT_EQ(first.steps[i].loss, full.steps[i].loss) << "step " << i;
      EXPECT_EQ(rest.steps[i].loss, full.steps[6 + i].loss) << "step " << 6 + i;  // bitwise
      EXPECT_EQ(rest.steps[i].grad_norm, full.steps[6 + i].grad_norm) << "step " << 6 + i;
    }
  }
}

TEST_F(TrainerTest, DamagedLatestFallsBackToThePreviousCheckpoint) {
  Config c = config("run");
  TrainOptions stop;
  stop.stop_at_step = 8;  // checkpoints at 4 and 8
  run(c, stop);
  const std::string latest = checkpoint::latest_checkpoint(c.run.dir);
  ASSERT_EQ(fs::path(latest).filename(), "step_00000008");
  fs::resize_file(fs::path(latest) / "rank_00000.h5", 100);  // truncated
  // Naming the damaged checkpoint explicitly is an error naming the file.
  TrainOptions explicit_path;
  explicit_path.resume = latest;
  try {
    run(c, explicit_path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank_00000.h5"), std::string::npos) << e.what();
  }
  std::ostringstream log, warn;
  TrainOptions o;
  o.warnings = &warn;  // warnings go to their own stream (standard error by default)
  const TrainSummary resumed = train(c, log, o);
  EXPECT_EQ(resumed.start_step, 4);
  EXPECT_NE(warn.str().find("warning: skipping damaged checkpoint"), std::string::npos) << warn.str();
  EXPECT_NE(warn.str().find("is truncated"), std::string::npos) << warn.str();
  // When every checkpoint is damaged, the error says so and how to start over, after the
  // warnings.
  for (const auto& d : checkpoint::complete_checkpoints(c.run.dir))
    fs::resize_file(fs::path(d) / "rank_00000.h5", 100);
  std::ostringstream warn2;
  o.warnings = &warn2;
  try {
    train(c, log, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is damaged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--resume none"), std::string::npos) << e.what();
  }
  EXPECT_NE(warn2.str().find("skipping damaged checkpoint"), std::string::npos) << warn2.str();
}

// A second run in a run.dir that a live run holds stops at once, naming the holder, and
// writes nothing there.
TEST_F(TrainerTest, SecondRunInTheSameRunDirIsRefused) {
  Config c = config("run");
  RunLock holder(c.run.dir);
  try {
    run(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is in use by another run (host "), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::path(c.run.dir) / "metrics.jsonl"));
}

TEST_F(TrainerTest, StopAtStepOutsideTheRunIsAnError) {
  Config c = config("run");
  TrainOptions o;
  o.stop_at_step = 13;  // train.steps is 12
  EXPECT_THROW(run(c, o), Error);
  o.stop_at_step = 4;
  run(c, o);  // a checkpoint at step 4
  try {
    run(c, o);  // resumes at step 4: stopping at 4 is not ahead of it
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--stop-at-step 4 is outside (4, 12]"), std::string::npos) << e.what();
  }
}

// A diverging run stops with the step and advice; the weights it stops on are never the
// latest checkpoint.
TEST_F(TrainerTest, DivergenceStopsBeforeSavingNonFiniteWeights) {
  Config c = config("run");
  c.optim.lr = 1e30;
  c.optim.warmup_steps = 0;
  c.optim.grad_clip = 0;
  c.checkpoint.interval = 1;
  try {
    run(c);
    FAIL() << "a learning rate of 1e30 trained 12 steps";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optim.lr"), std::string::npos) << e.what();
  }
  const std::string latest = checkpoint::latest_checkpoint(c.run.dir);
  if (!latest.empty()) {
    const checkpoint::Manifest m = checkpoint::read_manifest(latest);
    for (const auto& t : m.tensors) {
      if (t.name.rfind("param/", 0) != 0) continue;
      Tensor host = Tensor::empty(t.shape);
      checkpoint::read_tensor(m, t.name, t.global_shape, t.offsets, host);
      for (float v : host.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << t.name << " in " << latest;
    }
  }
}

TEST_F(TrainerTest, ACheckpointOfAnotherModelIsRefused) {
  Config c = config("run");
  TrainOptions stop;
  stop.stop_at_step = 4;
  run(c, stop);
  Config other = c;
  other.model.n_head = 4;  // same tensor shapes, different model
  try {
    run(other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_head = 2"), std::string::npos) << e.what();
  }
  Config wider = c;
  wider.model.n_embd = 32;
  wider.model.n_head = 2;
  EXPECT_THROW(run(wider), Error);
  TrainOptions fresh;
  fresh.resume = "none";
  EXPECT_EQ(run(other, fresh).start_step, 0);
}

TEST_F(TrainerTest, PreemptionSignalSavesAndStopsAtAStepBoundary) {
  Config c = config("run");
  c.train.steps = 1000000;
  c.checkpoint.interval = 0;  // the only checkpoint is the preemption's
  // The signal arrives mid-run (from the step loop's own callback, so never before the
  // handler is installed, however slow the machine).
  TrainOptions signal_at_step_3;
  signal_at_step_3.on_step = [](const StepMetrics& m, size_t) {
    if (m.step == 2) ::kill(::getpid(), SIGUSR1);
  };
  const TrainSummary s = run(c, signal_at_step_3);
  EXPECT_TRUE(s.preempted);
  EXPECT_EQ(s.steps.size(), 4u) << "the flag is acted on at the next step boundary";
  ASSERT_FALSE(s.steps.empty());
  const int64_t done = s.steps.back().step + 1;
  EXPECT_LT(done, c.train.steps);
  EXPECT_EQ(fs::path(checkpoint::latest_checkpoint(c.run.dir)).filename(),
            "step_" + std::string(8 - std::to_string(done).size(), '0') + std::to_string(done));
  // The default disposition is back: a second run is not preempted by the old signal.
  TrainOptions o;
  o.stop_at_step = done + 2;
  const TrainSummary next = run(c, o);
  EXPECT_EQ(next.start_step, done);
  EXPECT_FALSE(next.preempted);
  EXPECT_EQ(next.steps.size(), 2u);
}

TEST_F(TrainerTest, MetricsRecordCheckpointTimes) {
  Config c = config("run");
  c.log.interval = 1;
  run(c);
  std::ifstream in(fs::path(c.run.dir) / "metrics.jsonl");
  std::string line;
  int lines = 0, saves = 0;
  while (std::getline(in, line)) {
    ++lines;
    for (const char* key : {"\"step\"", "\"loss\"", "\"lr\"", "\"grad_norm\"", "\"tokens_per_sec\""})
      EXPECT_NE(line.find(key), std::string::npos) << line;
    if (line.find("ckpt_block_ms") != std::string::npos) ++saves;
  }
  EXPECT_EQ(lines, 12);
  EXPECT_EQ(saves, 3);  // steps 4, 8, 12
  EXPECT_EQ(checkpoint::complete_checkpoints(c.run.dir).size(), 2u);  // keep: 2
}

// Dropout masks are a function of the global sample: micro-batches of 2, 4 and 8 train
// the same model (losses to float tolerance; the sums run in another order).
TEST_F(TrainerTest, DropoutRunIsTheSameForEveryMicroBatchSize) {
  std::vector<TrainSummary> runs;
  for (int micro : {8, 4, 2}) {
    Config c = config("micro" + std::to_string(micro));
    c.model.dropout = 0.1;
    c.train.global_batch_size = 8;
    c.train.micro_batch_size = micro;
    c.checkpoint.interval = 0;
    runs.push_back(run(c));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].steps.size(), runs[0].steps.size());
    for (size_t i = 0; i < runs[0].steps.size(); ++i)
      EXPECT_NEAR(runs[r].steps[i].loss, runs[0].steps[i].loss, 1e-5 * runs[0].steps[i].loss) << "run " << r << " step " << i;
  }
}

// A plain run writes the measurement contract: comm_bytes (all zero in one process) and
// mem_peak per logged step, memory.json with this rank's entry at the end.
TEST_F(TrainerTest, PlainRunWritesCommBytesMemPeakAndMemoryJson) {
  Config c = config("run");
  c.log.interval = 1;
  c.checkpoint.interval = 0;
  const TrainSummary s = run(c);
  std::ifstream in(fs::path(c.run.dir) / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    const testing::Json j = testing::Json::parse(line);
    EXPECT_EQ(j["comm_bytes"]["dp"].number + j["comm_bytes"]["tp"].number + j["comm_bytes"]["pp"].number, 0) << line;
    EXPECT_GT(j["mem_peak"].number, 0) << line;
    EXPECT_GE(j["mem_peak"].number, j["mem_bytes"].number) << line;
  }
  EXPECT_EQ(lines, 12);
  const testing::Json m = testing::Json::parse_file((fs::path(c.run.dir) / "memory.json").string());
  ASSERT_EQ(m["ranks"].array.size(), 1u);
  const testing::Json& r = m["ranks"][0];
  // 2 layers of width 16, V 64, T 16: 7872 f32 parameters (1024 + 256 + 2·3280 + 32); AdamW keeps two moments each.
  EXPECT_EQ(r["params"].number, 4 * 7872);
  EXPECT_EQ(r["grads"].number, 4 * 7872);
  EXPECT_EQ(r["optim"].number, 2 * 4 * 7872);
  // Saved activations of a micro-batch of 2 x 16 tokens: more than the [2,16,16] input of
  // each block, and all of it within the allocator's peak.
  EXPECT_GT(r["activations_peak"].number, 2 * 2 * 16 * 16 * 4);
  EXPECT_LT(r["activations_peak"].number, r["peak"].number);
  EXPECT_EQ(s.memory.params, 4 * 7872);
}

}  // namespace
}  // namespace ternion::train

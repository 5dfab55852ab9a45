// Data-parallel training against one process, under mpirun (-np 2 and -np 4): same
// config, seed and global batch, dropout 0.1; the one process takes the whole batch in one
// micro-batch while the dp ranks split it further; per-step losses agree to 1e-5
// relative over 20 steps. Also checks comm_bytes against the all-reduce formula and
// memory.json's entries.
// Rank 0 also trains the single-process reference (it never touches MPI) and resumes a
// data-parallel checkpoint in one process, which must say it changed dp and continue on
// the reference's curve.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "data/token_file.h"
#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "model/gpt.h"
#include "train/model_shard.h"
#include "train/parity_testing.h"
#include "train/trainer.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

parallel::ParallelContext* g_ctx = nullptr;  // built once, by DpParityEnvironment below
fs::path g_dir;

Config base_config(const std::string& run, int micro) {
  Config c;
  c.run.dir = (g_dir / run).string();
  c.run.seed = 11;
  c.model.vocab_size = 64;
  c.model.block_size = 16;
  c.model.n_layer = 2;
  c.model.n_head = 2;
  c.model.n_embd = 32;
  c.model.dropout = 0.1;  // the mask is a function of the global sample: dp must not change it
  c.data.train = (g_dir / "train.h5").string();
  c.data.val = (g_dir / "train.h5").string();
  c.data.shuffle = true;
  c.train.steps = 20;
  c.train.global_batch_size = 8;
  c.train.micro_batch_size = micro;
  c.train.eval_interval = 10;
  c.train.eval_batches = 3;
  c.optim.lr = 3e-3;
  c.optim.warmup_steps = 4;
  c.optim.grad_clip = 0.5;  // clipping active: the norm must be the global one
  c.log.interval = 100;
  c.parallel.bucket_mb = 0.005;  // several buckets for this small model
  return c;
}

// micro: this run's micro-batch size; with G=8 and dp ranks, accumulation = 8 / (micro * dp).
// The reference is one process computing the whole batch of 8 in one micro-batch, so a
// difference in how masks or gradients depend on the split cannot hide on both sides.
void check_parity(int micro) {
  const int dp = g_ctx->layout.dp;
  SCOPED_TRACE("dp=" + std::to_string(dp) + " micro=" + std::to_string(micro));
  const std::string name = "dp" + std::to_string(dp) + "_m" + std::to_string(micro);
  Config c = base_config(name, micro);
  c.checkpoint.interval = 10;
  std::ostringstream log;
  const TrainSummary got = train(c, log, {}, g_ctx);
  ASSERT_EQ(got.steps.size(), 20u);
  EXPECT_GT(got.steps.back().comm_ms, 0.0);
  // comm_bytes: every step all-reduces every gradient (S = 4 bytes x parameters) and the
  // loss (8 bytes) over dp ranks, 2(n-1)/n of each by the nccl-tests convention; the
  // reducer's own bookkeeping (which parameters got a gradient) adds well under 1%.
  int64_t n_params = 0;
  {
    model::Gpt whole(gpt_config(c, Device::cpu(), DType::f32));
    n_params = whole.num_parameters();
  }
  const double ring = 2.0 * (dp - 1) / dp;
  for (const StepMetrics& m : got.steps) {
    const double want = ring * (4.0 * static_cast<double>(n_params) + 8);
    EXPECT_GE(static_cast<double>(m.comm_bytes.dp), want) << "step " << m.step;
    EXPECT_LE(static_cast<double>(m.comm_bytes.dp), 1.01 * want) << "step " << m.step;
    EXPECT_EQ(m.comm_bytes.tp, 0);
    EXPECT_EQ(m.comm_bytes.pp, 0);
  }
  if (g_ctx->rank != 0) return;
  EXPECT_NE(log.str().find("layout dp=" + std::to_string(dp) + " tp=1 pp=1"), std::string::npos) << log.str();
  // memory.json: one entry per rank, each with its coordinates and a full replica.
  const testing::Json mem = testing::Json::parse_file((fs::path(c.run.dir) / "memory.json").string());
  ASSERT_EQ(mem["ranks"].array.size(), static_cast<size_t>(dp));
  for (int r = 0; r < dp; ++r) {
    EXPECT_EQ(mem["ranks"][r]["rank"].number, r);
    EXPECT_EQ(mem["ranks"][r]["dp"].number, r);
    EXPECT_EQ(mem["ranks"][r]["params"].number, 4.0 * static_cast<double>(n_params));
  }

  Config one = base_config(name + "_ref", 8);
  std::ostringstream ref_log;
  const TrainSummary ref = train(one, ref_log);  // one process, no communication
  expect_same_losses(ref, got);

  // The dp checkpoint at step 10 resumes in one process and stays on the curve.
  Config again = c;
  again.run.dir = (g_dir / (name + "_resumed")).string();
  std::ostringstream resume_log;
  TrainOptions o;
  o.resume = (fs::path(c.run.dir) / "checkpoints" / "step_00000010").string();
  const TrainSummary rest = train(again, resume_log, o);
  EXPECT_NE(resume_log.str().find("written with dp=" + std::to_string(dp) + ", resuming with dp=1"),
            std::string::npos)
      << resume_log.str();
  expect_same_losses(ref, rest, 10);
}

TEST(DataParallel, OneMicroBatchPerRankMatchesOneProcess) { check_parity(8 / g_ctx->layout.dp); }

TEST(DataParallel, AccumulatingTwoMicroBatchesMatchesOneProcess) {
  if (8 / g_ctx->layout.dp < 2) GTEST_SKIP() << "needs dp <= 4";
  check_parity(4 / g_ctx->layout.dp);
}

TEST(DataParallel, ConfigHashesAgree) {
  const Config c = base_config("hash", 1);
  const auto all = g_ctx->world->all_gather_strings(std::to_string(config_hash(c)));
  for (const auto& h : all) EXPECT_EQ(h, all[0]);
}

}  // namespace
}  // namespace ternion::train

// Job-wide set-up, run on every rank by the shared MPI test main (parallel/mpi_test_main.h)
// before the tests: the data-parallel context, and one directory for the job, named by rank
// 0, holding the corpus.
namespace {

class DpParityEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    using namespace ternion;
    parallel::Runtime& rt = parallel::testing::runtime();
    train::Config probe;
    probe.train.global_batch_size = 8;
    probe.train.micro_batch_size = 1;
    ctx_ = parallel::ParallelContext::create(rt, train::resolve_layout(probe, rt.size()));
    train::g_ctx = ctx_.get();
    std::string dir = (std::filesystem::temp_directory_path() / ("ternion_dp_" + std::to_string(::getpid()))).string();
    dir_ = ctx_->world->all_gather_strings(dir)[0];
    train::g_dir = dir_;
    if (rt.rank() == 0) {
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      std::vector<int32_t> tokens;
      for (int i = 0; i < 8000; ++i) tokens.push_back((i * 7 + (i / 13) % 5) % 40);
      data::write_token_file((std::filesystem::path(dir_) / "train.h5").string(), tokens, 64, "test");
    }
    ctx_->world->barrier();
  }
  void TearDown() override {
    ctx_->world->barrier();  // every rank is done with the directory
    if (ctx_->rank == 0) std::filesystem::remove_all(dir_);
    ternion::train::g_ctx = nullptr;
    ctx_.reset();
  }

 private:
  std::unique_ptr<ternion::parallel::ParallelContext> ctx_;
  std::string dir_;
};

::testing::Environment* const kEnvironment = ::testing::AddGlobalTestEnvironment(new DpParityEnvironment);

}  // namespace

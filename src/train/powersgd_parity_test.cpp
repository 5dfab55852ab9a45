// PowerSGD in training, under mpirun. At a rank of at least min(n, m) for every matrix the
// low-rank product is exact, so the losses are the one process's (float tolerance): alone at
// dp = world, and composed with tp, pp (-np 4) and ZeRO-1, 2 and 3 (-np 2). (Convergence at rank 4:
// tests/e2e/powersgd_converge.sh.) A checkpoint carries each matrix's Q and error buffers: resumed at
// the same layout the run continues bit for bit; resumed at another rank the state starts
// afresh with a warning.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "train/corpus_environment.h"
#include "train/parity_testing.h"
#include "train/trainer.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

std::string g_dir;
::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_powersgd_", &g_dir));

int world_size() { return parallel::testing::runtime().size(); }

Config base_config(const std::string& run, int micro) {
  Config c = parity_config(g_dir, run, micro);
  c.model.n_head = 4;
  return c;
}

// Every matrix of the parity model (C = 32; V = 64, T = 16) has min(n, m) <= 32.
Config full_rank(Config c) {
  c.parallel.powersgd.rank = 32;
  c.parallel.powersgd.min_compression_rate = 0;
  c.parallel.powersgd.start_step = 0;
  return c;
}

const TrainSummary& reference() {
  static std::optional<TrainSummary> ref;
  if (!ref) {
    std::ostringstream log;
    ref = train(base_config("reference", 8), log);
  }
  return *ref;
}

TrainSummary run(const Config& c, std::string* log_out = nullptr) {
  parallel::Runtime& rt = parallel::testing::runtime();
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
  std::ostringstream log;
  TrainSummary s = train(c, log, {}, ctx.get());
  if (log_out) *log_out = log.str();
  return s;
}

// The product is exact at full rank; what remains is f32 rounding through Q.
void expect_close_losses(const TrainSummary& ref, const TrainSummary& got) {
  ASSERT_EQ(ref.steps.size(), got.steps.size());
  for (size_t i = 0; i < got.steps.size(); ++i)
    EXPECT_NEAR(got.steps[i].loss, ref.steps[i].loss, 1e-5 * std::abs(ref.steps[i].loss)) << "step " << i + 1;
}

TEST(PowerSgdTraining, FullRankMatchesOneProcess) {
  Config c = full_rank(base_config("full_rank_dp", 2));
  const TrainSummary got = run(c);
  if (parallel::testing::runtime().rank() == 0) expect_close_losses(reference(), got);
}

TEST(PowerSgdTraining, FullRankComposesWithZero1) {
  if (world_size() != 2) GTEST_SKIP() << "needs 2 ranks";
  Config c = full_rank(base_config("full_rank_zero1", 2));
  c.parallel.zero_stage = 1;
  const TrainSummary got = run(c);
  if (parallel::testing::runtime().rank() == 0) expect_close_losses(reference(), got);
}

// Stages 2 and 3 hold the compressed step's full gradient through both micro-batches and
// keep their range of the average; stage 3 still gathers the parameters region by region.
TEST(PowerSgdTraining, FullRankComposesWithZero2And3) {
  if (world_size() != 2) GTEST_SKIP() << "needs 2 ranks";
  for (const int stage : {2, 3}) {
    Config c = full_rank(base_config("full_rank_zero" + std::to_string(stage), 2));
    c.parallel.zero_stage = stage;
    c.parallel.powersgd.start_step = 3;  // exact reduce-scatters first, then compressed steps
    SCOPED_TRACE(c.run.dir);
    const TrainSummary got = run(c);
    if (parallel::testing::runtime().rank() == 0) expect_close_losses(reference(), got);
  }
}

TEST(PowerSgdTraining, FullRankComposesWithTensorAndPipelineParallelism) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  for (auto [tp, pp] : {std::pair{2, 1}, std::pair{1, 2}}) {
    Config c = full_rank(base_config("full_rank_tp" + std::to_string(tp) + "_pp" + std::to_string(pp), 2));
    c.parallel.tp = tp;
    c.parallel.pp = pp;
    SCOPED_TRACE(c.run.dir);
    const TrainSummary got = run(c);
    if (parallel::testing::runtime().rank() == 0) expect_close_losses(reference(), got);
  }
}

TEST(PowerSgdTraining, CheckpointCarriesTheStateAndAnotherLayoutResetsIt) {
  if (world_size() != 2) GTEST_SKIP() << "needs 2 ranks";
  Config c = base_config("resume", 2);
  c.parallel.powersgd.rank = 2;
  c.parallel.powersgd.start_step = 3;
  const TrainSummary full = run(c);
  Config again = c;
  again.run.dir = c.run.dir + "_again";
  TrainOptions o;
  o.resume = (fs::path(c.run.dir) / "checkpoints" / "step_00000010").string();
  parallel::Runtime& rt = parallel::testing::runtime();
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(again, rt.size()));
  std::ostringstream log, warn;
  o.warnings = &warn;
  const TrainSummary resumed = train(again, log, o, ctx.get());
  ASSERT_EQ(resumed.steps.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(resumed.steps[i].loss, full.steps[10 + i].loss) << "step " << resumed.steps[i].step + 1;
    EXPECT_EQ(resumed.steps[i].grad_norm, full.steps[10 + i].grad_norm);
  }
  EXPECT_EQ(warn.str().find("PowerSGD"), std::string::npos) << warn.str();
  // Another rank (or dp, tp, pp): Q's shape or its meaning changes, so the state starts afresh.
  Config other = c;
  other.run.dir = c.run.dir + "_rank3";
  other.parallel.powersgd.rank = 3;
  std::ostringstream other_log, other_warn;
  TrainOptions oo = o;
  oo.warnings = &other_warn;
  const TrainSummary reset = train(other, other_log, oo, ctx.get());
  EXPECT_EQ(reset.steps.size(), 10u);
  if (rt.rank() == 0) {
    EXPECT_NE(other_warn.str().find("PowerSGD's state (each matrix's Q and error feedback) starts afresh"),
              std::string::npos)
        << other_warn.str();
  }
}

}  // namespace
}  // namespace ternion::train

// Resume under another layout, under mpirun -np 8: 10 steps uninterrupted at dp 2 × tp 2 × pp 2
// with ZeRO-3 and sequence parallelism, checkpointing at step 5; that checkpoint resumed for
// steps 6-10 at (a) dp 4 × pp 2 with ZeRO-1, (b) tp 4 × pp 2 (interleaved, 2 chunks per stage),
// (c) one process, (d) dp 8 with ZeRO-2, (e) dp 8 with ZeRO-3, each with its own micro-batch
// size. Every resumed
// run's steps 6-10 match the uninterrupted run's to 1e-5 relative (parameters, AdamW moments,
// the sampler position and the step count all carried), its own checkpoint verifies, and the
// bytes each rank read are what it holds (ZeRO-3: its 1/8), the one process all of them.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "checkpoint/checkpoint.h"
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
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_resume_matrix_", &g_dir));

Config base_config(const std::string& run, int micro) {
  Config c = parity_config(g_dir, run, micro);
  c.model.n_head = 4;  // for tp = 4
  c.train.steps = 10;
  c.train.eval_interval = 5;
  c.checkpoint.interval = 5;
  return c;
}

struct Target {
  std::string name;
  int dp, tp, pp, zero, micro;
  std::string schedule = "1f1b";
  int virtual_stages = 1;
};

TEST(ResumeMatrix, EveryLayoutContinuesTheUninterruptedRun) {
  parallel::Runtime& rt = parallel::testing::runtime();
  if (rt.size() != 8) GTEST_SKIP() << "needs 8 ranks";
  Config src = base_config("source", 2);
  src.parallel.dp = 2;
  src.parallel.tp = 2;
  src.parallel.pp = 2;
  src.parallel.zero_stage = 3;
  src.parallel.sequence_parallel = true;
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(src, rt.size()));
  std::ostringstream log;
  const TrainSummary full = train(src, log, {}, ctx.get());
  ASSERT_EQ(full.steps.size(), 10u);
  TrainOptions from5;
  from5.resume = (fs::path(src.run.dir) / "checkpoints" / "step_00000005").string();

  for (const Target& t : {Target{"a_dp4_pp2_zero1", 4, 1, 2, 1, 1}, Target{"b_tp4_pp2", 1, 4, 2, 0, 2, "interleaved", 2},
                          Target{"d_dp8_zero2", 8, 1, 1, 2, 1}, Target{"e_dp8_zero3", 8, 1, 1, 3, 1}}) {
    SCOPED_TRACE(t.name);
    Config c = base_config(t.name, t.micro);
    c.parallel.dp = t.dp;
    c.parallel.tp = t.tp;
    c.parallel.pp = t.pp;
    c.parallel.zero_stage = t.zero;
    c.parallel.pp_schedule = t.schedule;
    c.parallel.virtual_stages = t.virtual_stages;
    auto tctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
    std::ostringstream tlog;
    const TrainSummary resumed = train(c, tlog, from5, tctx.get());
    EXPECT_EQ(resumed.start_step, 5);
    // Each rank reads only what it holds: at ZeRO-3 its range of the parameters and of both
    // moments, 4 + 4 + 4 bytes per element where AdamW keeps 8.
    if (t.zero == 3) {
      EXPECT_EQ(2 * resumed.resume_bytes_read, 3 * resumed.memory.optim) << "rank " << rt.rank();
    }
    if (rt.rank() == 0) {
      expect_same_losses(full, resumed, 5);
      const checkpoint::Manifest m = checkpoint::read_manifest((fs::path(c.run.dir) / "checkpoints" / "step_00000010").string());
      const std::vector<std::string> problems = checkpoint::verify_report(m);
      EXPECT_TRUE(problems.empty()) << (problems.empty() ? "" : problems[0]);
    }
  }
  if (rt.rank() != 0) return;
  // (c) one process.
  Config one = base_config("c_one_process", 8);
  std::ostringstream one_log;
  const TrainSummary resumed = train(one, one_log, from5);
  expect_same_losses(full, resumed, 5);
  // One process reads every stored element once: parameters and both moments, f32.
  constexpr int64_t kPsi = 64 * 32 + 16 * 32 + 4 * (12 * 32 * 32 + 13 * 32) + 2 * 32;
  EXPECT_EQ(resumed.resume_bytes_read, 12 * kPsi);
}

}  // namespace
}  // namespace ternion::train

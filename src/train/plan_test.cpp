// The planner against real runs, under mpirun -np 4: for 19 layouts (dp, tp, pp, sequence
// parallelism, GPipe, 1F1B and interleaved, each ZeRO stage, PowerSGD alone and with ZeRO-2
// and 3, each recompute mode;
// two micro-batches or more per rank) every rank's memory.json params, grads and optim and its
// comm_bytes on dp, tp and pp equal plan_model_states' to the byte, and its activations_peak
// and peak are within 10%. Also: a plan for
// GPT-3 175B on 1024 ranks ((t, p, d) = (8, 16, 8), Megatron-LM's layout) answers without
// allocating, a middle stage's bytes equal the closed form, and a layout that does not fit
// is refused naming the key.
#include "train/plan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#include "core/allocator.h"
#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "train/corpus_environment.h"
#include "train/parity_testing.h"
#include "train/trainer.h"

namespace ternion::train {
namespace {

std::string g_dir;
::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_plan_", &g_dir));

struct Case {
  const char* name;
  int dp, tp, pp, zero;
  bool sp = false;
  const char* schedule = "1f1b";
  int v = 1;
  const char* recompute = "none";
};

TEST(Plan, ModelStatesEqualTheRunsMemoryJson) {
  parallel::Runtime& rt = parallel::testing::runtime();
  if (rt.size() != 4) GTEST_SKIP() << "needs 4 ranks";
  const Case cases[] = {
      {"dp4", 4, 1, 1, 0},          {"dp4_zero1", 4, 1, 1, 1},       {"dp4_zero2", 4, 1, 1, 2},
      {"dp4_zero3", 4, 1, 1, 3},    {"tp4", 1, 4, 1, 0},             {"dp2_tp2_sp", 2, 2, 1, 0, true},
      {"dp2_pp2", 2, 1, 2, 0},      {"pp4", 1, 1, 4, 0},             {"tp2_pp2", 1, 2, 2, 0},
      {"dp2_pp2_zero3", 2, 1, 2, 3}, {"dp2_tp2_zero3", 2, 2, 1, 3, true},
      {"dp2_pp2_interleaved_zero1", 2, 1, 2, 1, false, "interleaved", 2},
      {"dp2_tp2_powersgd", 2, 2, 1, 0},      {"dp4_zero2_powersgd", 4, 1, 1, 2},
      {"dp2_pp2_zero3_powersgd", 2, 1, 2, 3},
      {"dp4_selective", 4, 1, 1, 0, false, "1f1b", 1, "selective"},
      {"dp2_pp2_gpipe_full", 2, 1, 2, 0, false, "gpipe", 1, "full"},
      {"tp2_sp_pp2_selective_zero3", 1, 2, 2, 3, true, "1f1b", 1, "selective"},
      {"dp2_tp2_sp_full", 2, 2, 1, 0, true, "1f1b", 1, "full"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    Config c = parity_config(g_dir, k.name, 1);
    c.model.vocab_size = 65;  // padded wte rows under tp, padded buckets under ZeRO
    c.model.n_head = 4;
    c.train.steps = 2;
    c.train.eval_interval = 0;
    c.data.val.clear();
    c.checkpoint.interval = 0;
    c.parallel.dp = k.dp;
    c.parallel.tp = k.tp;
    c.parallel.pp = k.pp;
    c.parallel.zero_stage = k.zero;
    c.parallel.sequence_parallel = k.sp;
    c.parallel.pp_schedule = k.schedule;
    c.parallel.virtual_stages = k.v;
    c.train.activation_checkpointing = k.recompute;
    if (std::string(k.name).find("powersgd") != std::string::npos) {
      c.parallel.powersgd.rank = 4;
      c.parallel.powersgd.start_step = 1;
    }
    const Plan plan = plan_model_states(c, rt.size(), 1);
    auto ctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
    std::ostringstream log;
    const TrainSummary run = train(c, log, {}, ctx.get());
    const PlannedRank& want = plan.ranks.at(static_cast<size_t>(rt.rank()));
    EXPECT_EQ(want.coord, ctx->coord);
    EXPECT_EQ(run.memory.params, want.params) << "rank " << rt.rank();
    EXPECT_EQ(run.memory.grads, want.grads) << "rank " << rt.rank();
    EXPECT_EQ(run.memory.optim, want.optim) << "rank " << rt.rank();
    // The second step (no evaluation, no checkpoint; PowerSGD compressing).
    const CommBytes& got = run.steps.at(1).comm_bytes;
    EXPECT_EQ(got.dp, want.comm_dp) << "rank " << rt.rank();
    EXPECT_EQ(got.tp, want.comm_tp) << "rank " << rt.rank();
    EXPECT_EQ(got.pp, want.comm_pp) << "rank " << rt.rank();
    const double a = static_cast<double>(run.memory.activations_peak), p = static_cast<double>(want.activations_peak);
    EXPECT_NEAR(p, a, 0.10 * a) << "activations, rank " << rt.rank();
    const double peak = static_cast<double>(run.memory.peak), planned = static_cast<double>(want.peak);
    EXPECT_NEAR(planned, peak, 0.10 * peak) << "peak, rank " << rt.rank();
    if (rt.rank() == 0)
      std::printf("  %-28s activations %8.0f planned %8.0f (%+.1f%%)  peak %8.0f planned %8.0f (%+.1f%%)\n", k.name, a,
                  p, 100 * (p / a - 1), peak, planned, 100 * (planned / peak - 1));
  }
}

// Megatron-LM's GPT-3 175B layout (Narayanan et al. 2021): 96 layers of C = 12288 over 16
// stages of 6 layers, tp 8, dp 8. A middle stage holds 6·(12C²/8 + 7C/8 + 6C) parameters.
TEST(Plan, Gpt3On1024RanksWithoutAllocating) {
  if (parallel::testing::runtime().rank() != 0) return;
  Config c;
  c.model.vocab_size = 51200;
  c.model.block_size = 2048;
  c.model.n_layer = 96;
  c.model.n_head = 96;
  c.model.n_embd = 12288;
  c.train.global_batch_size = 1536;
  c.train.micro_batch_size = 1;
  c.parallel.tp = 8;
  c.parallel.pp = 16;
  const size_t before = allocator_for(Device::cpu()).stats().allocated;
  const auto t0 = std::chrono::steady_clock::now();
  const Plan plan = plan_model_states(c, 1024);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(allocator_for(Device::cpu()).stats().allocated, before) << "nothing allocated";
  EXPECT_LT(secs, 1.0);  // any config at any world size answers in under a second
  ASSERT_EQ(plan.ranks.size(), 1024u);
  EXPECT_EQ(plan.layout.dp, 8);
  const int64_t C = 12288;
  const int64_t middle = 6 * (12 * C * C / 8 + 7 * C / 8 + 6 * C);
  for (const PlannedRank& r : plan.ranks) {
    if (r.coord.pp == 0 || r.coord.pp == 15) continue;
    ASSERT_EQ(r.params, 4 * middle) << "rank " << r.rank;
    ASSERT_EQ(r.optim, 8 * middle);
  }
  // A middle stage's 1.36B parameters (175B / 128): 5.44 GB of f32 parameters, 21.7 GB of
  // model states at 16 bytes each, within an 80 GB device before activations.
  EXPECT_NEAR(static_cast<double>(middle) / 1e9, 1.359, 0.001);
  EXPECT_NEAR(static_cast<double>(16 * middle) / 1e9, 21.75, 0.01);
  c.parallel.tp = 7;
  EXPECT_THROW(plan_model_states(c, 1024), Error);
}

}  // namespace
}  // namespace ternion::train

// The planner's step-time model and its search, in one process, and a paper check: the
// configurations of Megatron-LM's Table 1 (Narayanan et al. 2021, 1.7B to 1T parameters on
// 32 to 3072 80 GB GPUs) fit where the paper ran them.
#include "train/plan_search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace ternion::train {
namespace {

constexpr int64_t kGB = 1000LL * 1000 * 1000;

Config gpt(int heads, int hidden, int layers, int batch) {
  Config c;
  c.model.vocab_size = 51200;
  c.model.block_size = 2048;
  c.model.n_layer = layers;
  c.model.n_head = heads;
  c.model.n_embd = hidden;
  c.model.dropout = 0;
  c.train.global_batch_size = batch;
  c.train.micro_batch_size = 1;
  c.precision = "bf16";
  c.data.train = "unused.h5";
  return c;
}

// Megatron-LM's GPT-3 175B layout: (t, p, d) = (8, 16, 8).
Config gpt3(int tp, int pp) {
  Config c = gpt(96, 12288, 96, 1536);
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.train.activation_checkpointing = "full";
  return c;
}

TEST(StepTime, ComputeIsTheModelsFlopsOverTheRanks) {
  const Config c = gpt3(8, 16);
  const Plan plan = plan_model_states(c, 1024, 0, false);
  StepTimeModel m;
  m.device_flops = 1e15;
  m.efficiency = 0.5;
  const StepTime t = estimate_step_time(c, plan, m);
  // 6N + 6LCT per token (N without the position embedding), 1536 · 2048 tokens.
  const double C = 12288, N = 12.0 * 96 * C * C + 13.0 * 96 * C + 51200 * C + 2 * C;
  const double flops = (6 * N + 6 * 96 * C * 2048) * 1536 * 2048;
  EXPECT_NEAR(t.compute, flops / (1024 * 0.5e15), 1e-3 * t.compute);
  // Full recomputation runs each block's forward again: a third more of the blocks' work.
  EXPECT_NEAR(t.recompute / t.compute, 1.0 / 3, 0.02);
  // The 1F1B bubble: (p - 1) / m of the work, m = 1536 / 8 micro-batches.
  EXPECT_NEAR(t.bubble, (t.compute + t.recompute) * 15.0 / 192, 1e-9);
  // tp = 8 within a node of 8, dp and pp across nodes (order tp-dp-pp).
  // Megatron-LM's layout fits an 80 GB device.
  EXPECT_LT(largest_peak(plan).bytes, 80 * kGB);
  EXPECT_FALSE(t.tp_inter);
  EXPECT_TRUE(t.dp_inter);
  EXPECT_TRUE(t.pp_inter);
  int64_t tp_bytes = 0;
  for (const PlannedRank& r : plan.ranks) tp_bytes = std::max(tp_bytes, r.comm_tp);
  EXPECT_DOUBLE_EQ(t.tp, static_cast<double>(tp_bytes) / m.intra_node_bw);
  // Four ranks per node: the tp groups now cross nodes, at the slower link.
  m.gpus_per_node = 4;
  const StepTime t4 = estimate_step_time(c, plan, m);
  EXPECT_TRUE(t4.tp_inter);
  EXPECT_NEAR(t4.tp / t.tp, m.intra_node_bw / m.inter_node_bw, 1e-9);
}

TEST(StepTime, InterleavingDividesTheBubble) {
  Config c = gpt3(8, 16);
  const StepTime one = estimate_step_time(c, plan_model_states(c, 1024, 0, false), {});
  c.parallel.pp_schedule = "interleaved";
  c.parallel.virtual_stages = 2;
  const StepTime two = estimate_step_time(c, plan_model_states(c, 1024, 0, false), {});
  EXPECT_NEAR(two.bubble, one.bubble / 2, 1e-9 * one.bubble);
  EXPECT_DOUBLE_EQ(two.compute, one.compute);
}

// Weak scaling from Megatron-LM's Table 1: (heads, hidden, layers, t, p, GPUs, batch) and
// the parameter count the paper gives. Each runs with full recomputation, as the paper's
// runs did, micro-batch 1 and the 1F1B schedule, in bf16 with f32 master weights,
// gradients and AdamW state (16 bytes per parameter, as the paper's mixed precision).
TEST(PaperCheck, MegatronTable1FitsIn80GB) {
  struct Row {
    double billions;
    int heads, hidden, layers, t, p, gpus, batch;
  };
  const Row rows[] = {
      {1.7, 24, 2304, 24, 1, 1, 32, 512},        {3.6, 32, 3072, 30, 2, 1, 64, 512},
      {7.5, 32, 4096, 36, 4, 1, 128, 512},       {18.4, 48, 6144, 40, 8, 1, 256, 1024},
      {39.1, 64, 8192, 48, 8, 2, 512, 1536},     {76.1, 80, 10240, 60, 8, 4, 1024, 1792},
      {145.6, 96, 12288, 80, 8, 8, 1536, 2304},  {310.1, 128, 16384, 96, 8, 16, 1920, 2160},
      {529.6, 128, 20480, 105, 8, 35, 2520, 2520}, {1008.0, 160, 25600, 128, 8, 64, 3072, 3072},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::to_string(row.billions) + "B");
    Config c = gpt(row.heads, row.hidden, row.layers, row.batch);
    c.parallel.tp = row.t;
    c.parallel.pp = row.p;
    c.train.activation_checkpointing = "full";
    const auto t0 = std::chrono::steady_clock::now();
    const Plan plan = plan_model_states(c, row.gpus, 0, false);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
    // The model the plan describes has the paper's size: one rank per stage holds 1/t of
    // it (the replicated LayerNorms and biases t times, the tied embedding on two stages).
    int64_t bytes = 0;
    for (const PlannedRank& r : plan.ranks) bytes += r.params;
    // (The paper rounds to 0.1B: its 1.7B is 1.65B by its own formula.)
    EXPECT_NEAR(static_cast<double>(bytes) / 4 * row.t / 1e9, row.billions, std::max(0.05, 0.02 * row.billions));
    const PlanPeak peak = largest_peak(plan);
    EXPECT_LT(peak.bytes, 80 * kGB) << "rank " << peak.rank;
    if (row.billions > 5) {  // its data-parallel ranks alone, without model parallelism, do not fit
      Config flat = c;
      flat.parallel.tp = flat.parallel.pp = 1;
      EXPECT_GT(largest_peak(plan_model_states(flat, plan.layout.dp, 0, false)).bytes, 80 * kGB);
    }
    std::printf("  %7.1fB  (t, p, d) = (%d, %d, %d): largest peak %.1f GB (rank %d)\n", row.billions, row.t, row.p,
                plan.layout.dp, static_cast<double>(peak.bytes) / 1e9, peak.rank);
  }
}

TEST(Search, RanksWhatFitsByStepTime) {
  // GPT-3 XL's shape (24 layers, C = 2048) on 64 ranks of 16 GB: too big for plain data
  // parallelism, it needs sharding, tensor or pipeline parallelism.
  Config c = gpt(16, 2048, 24, 512);
  c.precision = "fp32";
  const auto t0 = std::chrono::steady_clock::now();
  const SearchResult res = search_layouts(c, 64, 16 * kGB, {});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 60.0);
  ASSERT_FALSE(res.fits.empty());
  EXPECT_GT(res.too_big, 0);
  EXPECT_GT(res.invalid, 0);  // e.g. tp = 32 does not divide 16 heads
  EXPECT_EQ(res.tried, res.too_big + static_cast<int64_t>(res.fits.size()));
  double last = 0;
  bool zero_or_split = true;
  for (const Candidate& k : res.fits) {
    EXPECT_LE(k.peak.bytes, 16 * kGB);
    EXPECT_GE(k.time.total(), last * 0.995);  // fastest first (ties within 0.5%)
    last = std::max(last, k.time.total());
    if (k.dp == 64 && k.zero_stage == 0) zero_or_split = false;
  }
  EXPECT_TRUE(zero_or_split) << "plain dp = 64 holds 16 bytes per parameter and the activations: it cannot fit";
  // The winner, planned again on its own, gives the same peak and time.
  const Candidate& best = res.fits.front();
  const Config b = best.applied_to(c);
  EXPECT_EQ(b.parallel.dp * b.parallel.tp * b.parallel.pp, 64);
  const Plan again = plan_model_states(b, 64);
  EXPECT_EQ(largest_peak(again).bytes, best.peak.bytes);
  EXPECT_NEAR(estimate_step_time(b, again, {}).total(), best.time.total(), 1e-9 * best.time.total());
  // No device memory, no search.
  EXPECT_THROW(search_layouts(c, 64, 0, {}), Error);
}

}  // namespace
}  // namespace ternion::train

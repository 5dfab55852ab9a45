// Tensor-parallel training against one process, under mpirun: -np 2 is tp = 2; -np 4 is
// tp = 4, dp = 2 × tp = 2 and tp = 2 × pp = 2; each with and without sequence parallelism,
// dropout 0.1, clipping on, a vocabulary (65) that no tp size divides. The one process
// takes the whole batch of 8 in one micro-batch, the tp runs micro-batches of 2. Per-step
// losses agree to 1e-5 relative and gradient norms to 1e-4 over 20 steps; model.h5 holds the
// one process's tensors in their global shapes; per-rank parameter bytes and comm_bytes.tp
// equal their analytic counts; each layout's checkpoint resumes in one process on the same
// curve, and a tp = 2 checkpoint resumes at tp = 2 exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "checkpoint/weights_file.h"
#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "parallel/tensor_parallel.h"
#include "train/corpus_environment.h"
#include "train/parity_testing.h"
#include "train/trainer.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

std::string g_dir;
::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_tp_", &g_dir));

constexpr int64_t kV = 65, kT = 16, kL = 4, kC = 32;

// The parity run with a vocabulary no tp size divides and heads for tp = 4.
Config base_config(const std::string& run, int micro) {
  Config c = parity_config(g_dir, run, micro);
  c.run.seed = 23;
  c.model.vocab_size = kV;
  c.model.n_head = 4;
  return c;
}

// f32 parameter bytes one rank holds: the split weights' 1/tp, the replicated parts whole,
// and wte's padded rows (parallel::vocab_shard).
int64_t param_bytes(int tp, int pp, const parallel::Coord& c) {
  const int64_t layers = kL / pp;
  int64_t n = layers * (12 * kC * kC / tp + 7 * kC / tp + 6 * kC);
  const bool first = c.pp == 0, last = c.pp == pp - 1;
  const int64_t wte = parallel::vocab_shard(kV, c.tp, tp).rows * kC;
  if (first) n += wte + kT * kC;
  if (last) n += 2 * kC + (first ? 0 : wte);
  return 4 * n;
}

// Bytes one rank sends on tp in a step that does not evaluate: each micro-batch's forward
// and backward (per layer two all-reduces of micro·T·C f32 in each direction, one after the
// embedding, one in the head's backward, the loss's max of N and sums of 2N), the gradient
// norm's f64 sum, and with sequence parallelism the replicated parameters' gradients.
int64_t tp_bytes(int tp, int pp, int dp, bool sp, const parallel::Coord& c) {
  const auto ar = [tp](int64_t bytes) { return 2 * (tp - 1) * bytes / tp; };
  const int64_t micro = 2, N = micro * kT, m = 8 / micro / dp, layers = kL / pp;
  const bool first = c.pp == 0, last = c.pp == pp - 1;
  int64_t per_micro = 4 * layers * ar(N * kC * 4);
  if (first) per_micro += ar(N * kC * 4);
  if (last) per_micro += ar(N * kC * 4) + ar(N * 4) + ar(2 * N * 4);
  int64_t bytes = m * per_micro + ar(8);
  if (sp) {
    int64_t replicated = layers * 6 * kC + (first ? kT * kC : 0) + (last ? 2 * kC : 0);
    bytes += ar(replicated * 4);
  }
  return bytes;
}

void check(int tp, int pp, bool sp, const std::string& schedule = "1f1b", int v = 1) {
  parallel::Runtime& rt = parallel::testing::runtime();
  const std::string name =
      "tp" + std::to_string(tp) + "_pp" + std::to_string(pp) + (sp ? "_sp" : "") + "_" + schedule;
  Config c = base_config(name, 2);
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.parallel.sequence_parallel = sp;
  c.parallel.pp_schedule = schedule;
  c.parallel.virtual_stages = v;
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
  SCOPED_TRACE(name + " " + ctx->layout.str());
  std::ostringstream log;
  const TrainSummary got = train(c, log, {}, ctx.get());
  ASSERT_EQ(got.steps.size(), 20u);
  EXPECT_EQ(got.memory.params, param_bytes(tp, pp, ctx->coord)) << "rank " << ctx->rank;
  const int64_t want_tp = tp_bytes(tp, pp, ctx->layout.dp, sp, ctx->coord);
  for (const StepMetrics& m : got.steps) {
    EXPECT_GT(m.tp_comm_ms, 0) << "time inside tp collectives, step " << m.step;
    if (m.val_loss >= 0) continue;  // evaluation adds its forwards
    EXPECT_EQ(m.comm_bytes.tp, want_tp) << "rank " << ctx->rank << " step " << m.step;
  }
  if (ctx->rank != 0) return;
  EXPECT_NE(log.str().find("tp=" + std::to_string(tp)), std::string::npos) << log.str();
  Config one = base_config(name + "_ref", 8);
  std::ostringstream ref_log;
  const TrainSummary ref = train(one, ref_log);
  expect_same_losses(ref, got);
  EXPECT_LT(ref.steps[0].tp_comm_ms, 0) << "no tp figure without tensor parallelism";
  // model.h5 from the tp shards: global shapes (wte [65, C], no padding), the one
  // process's values to float tolerance.
  for (const auto& [tensor, shape] : std::vector<std::pair<std::string, Shape>>{
           {"transformer.wte.weight", {kV, kC}},
           {"transformer.h.3.attn.c_attn.weight", {3 * kC, kC}},
           {"transformer.h.1.attn.c_proj.weight", {kC, kC}},
           {"transformer.h.0.mlp.c_fc.bias", {4 * kC}},
           {"transformer.ln_f.weight", {kC}}}) {
    std::vector<checkpoint::NamedTensor> a{{tensor, Tensor::empty(shape)}}, b{{tensor, Tensor::empty(shape)}};
    checkpoint::read_weights(got.weights_path, a);
    checkpoint::read_weights(ref.weights_path, b);
    const auto va = a[0].tensor.to_vector<float>(), vb = b[0].tensor.to_vector<float>();
    for (size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], 1e-4) << tensor << " [" << i << "]";
  }
  // The tp checkpoint at step 10 (its boxes, no padding) resumes in one process on the curve.
  Config again = one;
  again.run.dir = (fs::path(g_dir) / (name + "_resumed")).string();
  TrainOptions o;
  o.resume = (fs::path(c.run.dir) / "checkpoints" / "step_00000010").string();
  std::ostringstream resume_log;
  expect_same_losses(ref, train(again, resume_log, o), 10);
}

int world_size() { return parallel::testing::runtime().size(); }

TEST(TensorParallel, AllRanksOneGroupMatchesOneProcess) { check(world_size(), 1, false); }
TEST(TensorParallel, SequenceParallelMatchesOneProcess) { check(world_size(), 1, true); }
TEST(TensorParallel, WithDataParallelMatchesOneProcess) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check(2, 1, false);
  check(2, 1, true);
}
TEST(TensorParallel, WithPipelineStagesMatchesOneProcess) {
  if (world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check(2, 2, false);
  check(2, 2, true);
  check(2, 2, true, "interleaved", 2);  // two chunks of one layer per stage
}

// A tp = 2 checkpoint at step 10, resumed at tp = 2: the same steps 11..20, bit for bit.
TEST(TensorParallel, CheckpointResumesExactlyAtTheSameLayout) {
  if (world_size() != 2) GTEST_SKIP() << "needs 2 ranks";
  parallel::Runtime& rt = parallel::testing::runtime();
  Config c = base_config("tp2_resume", 2);
  c.parallel.tp = 2;
  c.parallel.sequence_parallel = true;
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
  std::ostringstream log;
  const TrainSummary full = train(c, log, {}, ctx.get());
  Config again = c;
  again.run.dir = c.run.dir + "_resumed";
  TrainOptions o;
  o.resume = (fs::path(c.run.dir) / "checkpoints" / "step_00000010").string();
  const TrainSummary resumed = train(again, log, o, ctx.get());
  ASSERT_EQ(resumed.steps.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(resumed.steps[i].loss, full.steps[10 + i].loss) << "step " << resumed.steps[i].step + 1;
    EXPECT_EQ(resumed.steps[i].grad_norm, full.steps[10 + i].grad_norm) << "step " << resumed.steps[i].step + 1;
  }
  EXPECT_EQ(resumed.param_hashes, full.param_hashes) << "the same final weights on tp rank " << ctx->coord.tp;
}

}  // namespace
}  // namespace ternion::train

// Pipeline-parallel training against one process, under mpirun: -np 2 is two stages, -np 4
// two stages times two data-parallel ranks. GPipe and 1F1B, dropout 0.1, clipping on, two
// layers per stage (also four stages of one at -np 4); the one process takes the whole batch
// of 8 in one micro-batch. Per-step
// losses agree to 1e-5 relative and gradient norms to 1e-4 over 20 steps; the two copies of the
// tied embedding stay bit-identical; comm_bytes on pp is the activations' and the tied
// gradient's traffic; a pipeline checkpoint resumes in one process on the same curve.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "checkpoint/weights_file.h"
#include "parallel/context.h"
#include "parallel/mpi_test_main.h"
#include "train/corpus_environment.h"
#include "train/parity_testing.h"
#include "train/trainer.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

std::string g_dir;
std::map<std::string, int64_t> g_stage0_activations;  // schedule -> rank 0's activations_peak

Config base_config(const std::string& run, int micro, int n_layer = 4) {
  Config c = parity_config(g_dir, run, micro);
  c.model.n_layer = n_layer;
  return c;
}

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_pp_", &g_dir));

void check_pipeline(const std::string& schedule, std::vector<int> pp_layers = {}, int pp = 2, int v = 1,
                    int n_layer = 4) {
  parallel::Runtime& rt = parallel::testing::runtime();
  const std::string name = "pp" + std::to_string(pp) + "_" + schedule + (pp_layers.empty() ? "" : "_uneven") +
                           (v > 1 ? "_v" + std::to_string(v) : "") + "_L" + std::to_string(n_layer);
  Config c = base_config(name, 2, n_layer);
  c.parallel.pp = pp;
  c.parallel.pp_schedule = schedule;
  c.parallel.pp_layers = pp_layers;
  c.parallel.virtual_stages = v;
  auto ctx = parallel::ParallelContext::create(rt, resolve_layout(c, rt.size()));
  SCOPED_TRACE(schedule + " " + ctx->layout.str());
  std::ostringstream log;
  const TrainSummary got = train(c, log, {}, ctx.get());
  ASSERT_EQ(got.steps.size(), 20u);

  // rank 0 is stage 0 of dp rank 0: it sends each micro-batch's activation [2,16,32] f32 to
  // stage 1 (interleaved: from each of its v chunks, and each chunk after the first sends
  // the gradient of its input back to the last stage: (2v-1)·m messages), all-reduces the
  // loss and the norm's sum (8 bytes each over pp stages: 2(pp-1)/pp of it) and the tied
  // embedding's gradient [64,32] f32 over the embedding group of 2 (first and last stage).
  const int64_t micro_batches = 8 / 2 / ctx->layout.dp;
  const int64_t scalar = 2 * (pp - 1) * 8 / pp;
  const int64_t want_pp = (2 * v - 1) * micro_batches * 2 * 16 * 32 * 4 + 2 * scalar + 64 * 32 * 4;
  if (ctx->rank == 0) {
    for (const StepMetrics& m : got.steps) EXPECT_EQ(m.comm_bytes.pp, want_pp) << "step " << m.step;
  }

  // The tied embedding: both stages' copies of wte are the same bits after training.
  // The first and last stage form the embedding group; middle stages hold neither copy.
  const auto it = got.param_hashes.find("transformer.wte.weight");
  const bool end_stage = ctx->coord.pp == 0 || ctx->coord.pp == pp - 1;
  ASSERT_EQ(it != got.param_hashes.end(), end_stage) << "stage " << ctx->coord.pp;
  if (end_stage) {
    const std::vector<std::string> hashes = ctx->embedding->all_gather_strings(std::to_string(it->second));
    ASSERT_EQ(hashes.size(), 2u);
    EXPECT_EQ(hashes[0], hashes[1]) << "the tied copies drifted apart";
  }

  if (ctx->rank != 0) return;
  EXPECT_NE(log.str().find("pp=" + std::to_string(pp)), std::string::npos) << log.str();
  // Stage 0 holds every micro-batch's activations under GPipe, at most pp of them under
  // 1F1B: fewer when there are more micro-batches than stages.
  const std::string key = std::to_string(pp) + (pp_layers.empty() ? "" : "uneven") + std::to_string(n_layer);
  g_stage0_activations[schedule + key] = got.memory.activations_peak;
  if (schedule == "1f1b" && g_stage0_activations.count("gpipe" + key) && micro_batches > pp) {
    EXPECT_LT(got.memory.activations_peak, g_stage0_activations["gpipe" + key]);
  }
  const testing::Json mem = testing::Json::parse_file((fs::path(c.run.dir) / "memory.json").string());
  ASSERT_EQ(mem["ranks"].array.size(), static_cast<size_t>(rt.size()));
  Config one = base_config(name + "_ref", 8, n_layer);
  std::ostringstream ref_log;
  const TrainSummary ref = train(one, ref_log);
  expect_same_losses(ref, got);
  // model.h5 gathered from both stages equals the one process's to float tolerance.
  std::vector<checkpoint::NamedTensor> a{{"transformer.h.3.mlp.c_fc.weight", Tensor::empty({128, 32})}},
      b{{"transformer.h.3.mlp.c_fc.weight", Tensor::empty({128, 32})}};
  checkpoint::read_weights(got.weights_path, a);
  checkpoint::read_weights(ref.weights_path, b);
  const auto va = a[0].tensor.to_vector<float>(), vb = b[0].tensor.to_vector<float>();
  for (size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], 1e-4) << i;

  // The pipeline's checkpoint at step 6 resumes in one process and stays on the curve.
  Config again = one;
  again.run.dir = (fs::path(g_dir) / (name + "_resumed")).string();
  TrainOptions o;
  o.resume = (fs::path(c.run.dir) / "checkpoints" / "step_00000010").string();
  std::ostringstream resume_log;
  expect_same_losses(ref, train(again, resume_log, o), 10);
}

TEST(PipelineParallel, GpipeMatchesOneProcess) { check_pipeline("gpipe"); }
TEST(PipelineParallel, OneFOneBMatchesOneProcess) { check_pipeline("1f1b"); }
// parallel.pp_layers: one layer on the first stage (with the embeddings), three on the last.
// Interleaved 1F1B: two chunks of one layer per stage (stage 0 holds layers 0 and 2).
TEST(PipelineParallel, InterleavedMatchesOneProcess) { check_pipeline("interleaved", {}, 2, 2); }
TEST(PipelineParallel, UnevenStagesMatchOneProcess) { check_pipeline("1f1b", {1, 3}); }
// Every rank a stage: at -np 4, four stages of one layer each, both schedules.
TEST(PipelineParallel, FourStagesMatchOneProcess) {
  if (parallel::testing::runtime().size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check_pipeline("gpipe", {}, 4);
  check_pipeline("1f1b", {}, 4);
}
// Four stages (dp = 1 at -np 4: m = 4, divisible by 4) of two chunks each over 8 layers.
TEST(PipelineParallel, FourStagesInterleavedMatchOneProcess) {
  if (parallel::testing::runtime().size() != 4) GTEST_SKIP() << "needs 4 ranks";
  check_pipeline("gpipe", {}, 4, 1, 8);
  check_pipeline("interleaved", {}, 4, 2, 8);
}

}  // namespace
}  // namespace ternion::train

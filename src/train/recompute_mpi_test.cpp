// train.activation_checkpointing under mpirun: with two pipeline stages (-np 2: pp 2;
// -np 4: dp 2 x pp 2, 1F1B, dropout 0.1, two micro-batches per rank), selective and full
// train the same bits as none over 20 steps on every rank, and each rank's
// activations_peak in memory.json orders none > selective > full. Before that, the
// gradient reducer of the world group takes a parameter used inside and outside a
// checkpointed region: one ready event, and the average of the plain gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "parallel/context.h"
#include "parallel/data_parallel.h"
#include "parallel/mpi_test_main.h"
#include "train/corpus_environment.h"
#include "train/trainer.h"
#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

std::string g_dir;

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_recompute_", &g_dir));

Tensor normal(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  init_normal(t, seed, "recompute_mpi_test", 0.0, 1.0);
  return t;
}

// The reducer throws when a parameter becomes ready twice in one backward, and all-reduces
// what the hook sees: the parameter's whole gradient, once.
TEST(RecomputeMpi, ParameterInsideAndOutsideARegionIsReducedOnce) {
  parallel::Communicator& world = parallel::testing::world();
  Tensor w = normal({4, 4}, 1);
  autograd::set_requires_grad(w);
  auto region = [&w](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{autograd::gelu(autograd::linear(in[0], w))};
  };
  std::vector<double> want(16, 0.0);
  for (int r = 0; r < world.size(); ++r) {
    autograd::backward(autograd::sum(autograd::linear(region({normal({3, 4}, 10 + r)})[0], w)));
    const auto g = autograd::grad(w).to_vector<float>();
    for (size_t i = 0; i < g.size(); ++i) want[i] += g[i] / world.size();
    autograd::zero_grad(w);
  }
  parallel::GradReducer reducer(world, {w}, 25.0);
  reducer.begin_backward(true);
  const Tensor x = normal({3, 4}, 10 + static_cast<uint64_t>(world.rank()));
  autograd::backward(autograd::sum(autograd::linear(autograd::checkpoint(region, {x})[0], w)));
  reducer.finish();
  const auto got = autograd::grad(w).to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << i;
}

Config config(const std::string& mode) {
  Config c;
  c.run.dir = (fs::path(g_dir) / mode).string();
  c.run.seed = 23;
  c.model.vocab_size = 64;
  c.model.block_size = 16;
  c.model.n_layer = 4;
  c.model.n_head = 2;
  c.model.n_embd = 32;
  c.model.dropout = 0.1;
  c.data.train = (fs::path(g_dir) / "train.h5").string();
  c.data.shuffle = true;
  c.train.steps = 20;
  c.train.global_batch_size = 8;
  c.train.activation_checkpointing = mode;
  c.optim.lr = 3e-3;
  c.optim.warmup_steps = 3;
  c.optim.grad_clip = 0.5;
  c.log.interval = 100;
  c.parallel.pp = 2;
  c.parallel.pp_schedule = "1f1b";
  c.parallel.bucket_mb = 0.01;
  return c;
}

TEST(RecomputeMpi, EveryModeTrainsTheSameBitsOnEveryStage) {
  parallel::Runtime& rt = parallel::testing::runtime();
  std::map<std::string, TrainSummary> runs;
  std::map<std::string, std::vector<double>> peaks;  // mode -> activations_peak of each rank
  for (const std::string mode : {"none", "selective", "full"}) {
    Config c = config(mode);
    c.train.micro_batch_size = 8 / (rt.size() / 2) / 2;  // dp = world / pp: two micro-batches per rank
    const parallel::Layout layout = resolve_layout(c, rt.size());
    auto ctx = parallel::ParallelContext::create(rt, layout);
    SCOPED_TRACE(mode + " " + ctx->layout.str());
    std::ostringstream log;
    runs[mode] = train(c, log, {}, ctx.get());
    ASSERT_EQ(runs[mode].steps.size(), 20u);
    if (ctx->rank == 0) {
      const testing::Json mem = testing::Json::parse_file((fs::path(c.run.dir) / "memory.json").string());
      for (const testing::Json& r : mem["ranks"].array) peaks[mode].push_back(r["activations_peak"].number);
      ASSERT_EQ(peaks[mode].size(), static_cast<size_t>(rt.size()));
    }
  }
  const TrainSummary& want = runs["none"];
  for (const std::string mode : {"selective", "full"}) {
    const TrainSummary& got = runs[mode];
    for (size_t i = 0; i < got.steps.size(); ++i) {
      EXPECT_EQ(got.steps[i].loss, want.steps[i].loss) << mode << " step " << i + 1;
      EXPECT_EQ(got.steps[i].grad_norm, want.steps[i].grad_norm) << mode << " step " << i + 1;
    }
    EXPECT_EQ(got.param_hashes, want.param_hashes) << mode;
  }
  for (size_t r = 0; r < peaks["none"].size(); ++r) {
    EXPECT_GT(peaks["none"][r], peaks["selective"][r]) << "rank " << r;
    EXPECT_GT(peaks["selective"][r], peaks["full"][r]) << "rank " << r;
  }
}

}  // namespace
}  // namespace ternion::train

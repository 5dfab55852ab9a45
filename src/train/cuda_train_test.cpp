// Training on a CUDA device against the CPU path: the same tiny GPT, the same batches and
// the same initial weights (drawn on the host), a few AdamW steps on each device.
//   fp32: losses agree to ~1e-4 relative and the parameters after the steps are close;
//   bf16: losses agree loosely (~2e-2), master weights and AdamW state stay f32.
// Then the whole trainer (data, upload, checkpoint staging, final weights) on CUDA.
// Every test skips where no GPU is visible (and in builds without the CUDA backend).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "autograd/autograd.h"
#include "data/token_file.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "train/trainer.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

#define TN_REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible (or a CPU-only build)"

model::GptConfig tiny(Device device, DType compute) {
  model::GptConfig c;
  c.vocab_size = 64;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  c.device = device;
  c.compute_dtype = compute;
  return c;
}

Tensor tokens(int64_t B, int64_t T, int64_t shift, int step) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < B * T; ++i) v.push_back(static_cast<int32_t>((i * 7 + step * 3 + shift + i / 5) % 64));
  return Tensor::from_vector(v, {B, T});
}

struct StepsResult {
  std::vector<double> losses;
  std::vector<std::vector<float>> params;  // after the steps, on the host
};

// `steps` steps of forward, backward, clip(1.0), AdamW on `device`.
StepsResult train_steps(Device device, DType compute, int steps) {
  model::Gpt gpt(tiny(device, compute));
  gpt.init(11);
  std::vector<optim::ParamRef> refs;
  for (auto& p : gpt.parameters()) refs.push_back({p.name, p.tensor, p.weight_decay});
  optim::AdamW opt(refs, {});
  StepsResult r;
  for (int s = 0; s < steps; ++s) {
    for (auto& p : gpt.parameters()) autograd::zero_grad(p.tensor);
    Tensor loss = gpt.loss(tokens(4, 16, 0, s).to(device), tokens(4, 16, 1, s).to(device));
    EXPECT_EQ(loss.device(), device);
    EXPECT_EQ(loss.dtype(), DType::f32);
    r.losses.push_back(loss.item());
    autograd::backward(loss);
    for (auto& p : gpt.parameters()) {
      const Tensor g = autograd::grad(p.tensor);
      EXPECT_EQ(g.device(), device) << p.name;
      EXPECT_EQ(g.dtype(), DType::f32) << p.name;  // the master gradient
    }
    optim::clip_grad_norm(refs, 1.0);
    opt.step(1e-3);
  }
  for (auto& st : opt.state()) EXPECT_EQ(st.m.device(), device);
  for (auto& p : gpt.parameters()) r.params.push_back(p.tensor.to_vector<float>());
  return r;
}

double max_abs_diff(const StepsResult& a, const StepsResult& b) {
  double worst = 0;
  for (size_t i = 0; i < a.params.size(); ++i)
    for (size_t j = 0; j < a.params[i].size(); ++j)
      worst = std::max(worst, std::abs(static_cast<double>(a.params[i][j]) - b.params[i][j]));
  return worst;
}

TEST(CudaTraining, InitialWeightsAreIdenticalAcrossDevices) {
  TN_REQUIRE_CUDA();
  model::Gpt cpu(tiny(Device::cpu(), DType::f32)), gpu(tiny(Device::cuda(0), DType::f32));
  cpu.init(3);
  gpu.init(3);
  for (size_t i = 0; i < cpu.parameters().size(); ++i) {
    EXPECT_TRUE(gpu.parameters()[i].tensor.device().is_cuda());
    EXPECT_EQ(cpu.parameters()[i].tensor.to_vector<float>(), gpu.parameters()[i].tensor.to_vector<float>())
        << cpu.parameters()[i].name;
  }
}

TEST(CudaTraining, Fp32MatchesTheCpu) {
  TN_REQUIRE_CUDA();
  const StepsResult cpu = train_steps(Device::cpu(), DType::f32, 5);
  const StepsResult gpu = train_steps(Device::cuda(0), DType::f32, 5);
  for (size_t s = 0; s < cpu.losses.size(); ++s)
    EXPECT_NEAR(gpu.losses[s], cpu.losses[s], 1e-4 * std::abs(cpu.losses[s])) << "step " << s;
  // lr 1e-3 moves each weight by up to 5e-3 over five steps; agreement far below that.
  EXPECT_LT(max_abs_diff(cpu, gpu), 1e-4);
}

TEST(CudaTraining, Bf16TracksTheFp32Cpu) {
  TN_REQUIRE_CUDA();
  const StepsResult cpu = train_steps(Device::cpu(), DType::f32, 5);
  const StepsResult gpu = train_steps(Device::cuda(0), DType::bf16, 5);
  for (size_t s = 0; s < cpu.losses.size(); ++s)
    EXPECT_NEAR(gpu.losses[s], cpu.losses[s], 2e-2 * std::abs(cpu.losses[s])) << "step " << s;
  EXPECT_LT(max_abs_diff(cpu, gpu), 2e-3);
  EXPECT_LT(cpu.losses.back(), cpu.losses.front());
  EXPECT_LT(gpu.losses.back(), gpu.losses.front());
}

class CudaTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ternion_cuda_train_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<int32_t> t;
    for (int i = 0; i < 6000; ++i) t.push_back((i * 7 + (i / 13) % 5) % 40);
    data::write_token_file((dir_ / "train.h5").string(), t, 64, "test");
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config config(const std::string& run, const std::string& precision) const {
    Config c;
    c.run.dir = (dir_ / run).string();
    c.run.seed = 5;
    c.model.vocab_size = 64;
    c.model.block_size = 16;
    c.model.n_layer = 2;
    c.model.n_head = 2;
    c.model.n_embd = 16;
    c.data.train = (dir_ / "train.h5").string();
    c.data.val = (dir_ / "train.h5").string();
    c.train.steps = 8;
    c.train.global_batch_size = 4;
    c.train.micro_batch_size = 2;
    c.train.eval_interval = 4;
    c.train.eval_batches = 2;
    c.optim.lr = 3e-3;
    c.optim.warmup_steps = 2;
    c.log.interval = 100;
    c.checkpoint.interval = 4;
    c.precision = precision;
    return c;
  }
  static TrainSummary run(const Config& c, Device device) {
    auto ctx = parallel::ParallelContext::single();
    ctx->layout = resolve_layout(c, 1);
    ctx->device = device;
    std::ostringstream log;
    TrainOptions o;
    o.resume = "none";
    return train(c, log, o, ctx.get());
  }
  fs::path dir_;
};

TEST_F(CudaTrainerTest, TrainerOnCudaMatchesTheCpu) {
  TN_REQUIRE_CUDA();
  const TrainSummary cpu = run(config("cpu", "fp32"), Device::cpu());
  const TrainSummary gpu = run(config("gpu", "fp32"), Device::cuda(0));
  const TrainSummary bf = run(config("bf16", "bf16"), Device::cuda(0));
  ASSERT_EQ(cpu.steps.size(), gpu.steps.size());
  ASSERT_EQ(cpu.steps.size(), bf.steps.size());
  for (size_t s = 0; s < cpu.steps.size(); ++s) {
    const double l = cpu.steps[s].loss;
    EXPECT_NEAR(gpu.steps[s].loss, l, 1e-4 * l) << "step " << s;
    EXPECT_NEAR(bf.steps[s].loss, l, 2e-2 * l) << "step " << s;
    EXPECT_NEAR(gpu.steps[s].grad_norm, cpu.steps[s].grad_norm, 1e-3 * cpu.steps[s].grad_norm);
    EXPECT_FALSE(bf.steps[s].skipped);
  }
  EXPECT_NEAR(gpu.final_val_loss, cpu.final_val_loss, 1e-4 * cpu.final_val_loss);
  // Checkpoints staged from device memory and the final weights exist.
  EXPECT_TRUE(fs::exists(gpu.weights_path));
  EXPECT_TRUE(fs::exists(bf.weights_path));
}

TEST_F(CudaTrainerTest, ResumesFromACheckpointWrittenOnCuda) {
  TN_REQUIRE_CUDA();
  Config c = config("resume", "fp32");
  const TrainSummary whole = run(c, Device::cuda(0));
  Config again = config("resume2", "fp32");
  auto ctx = parallel::ParallelContext::single();
  ctx->layout = resolve_layout(again, 1);
  ctx->device = Device::cuda(0);
  std::ostringstream log;
  TrainOptions o;
  o.resume = "none";
  o.stop_at_step = 4;
  train(again, log, o, ctx.get());
  o.resume = "auto";
  o.stop_at_step = 0;
  const TrainSummary rest = train(again, log, o, ctx.get());
  ASSERT_EQ(rest.start_step, 4);
  for (size_t s = 0; s < rest.steps.size(); ++s)
    EXPECT_NEAR(rest.steps[s].loss, whole.steps[s + 4].loss, 1e-5 * whole.steps[s + 4].loss);
}

}  // namespace
}  // namespace ternion::train

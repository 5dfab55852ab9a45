// Whole-model parity with an independent PyTorch implementation (gpt_reference.py): the
// same GPT-2, AdamW, clipping, schedule and gradient accumulation, step by step.
//
// golden.json holds what the PyTorch script computed from inputs this test wrote (the case
// below, the init weights from the seed, the tokens). The test regenerates those inputs and
// checks them against the golden first (ReferenceCase.*), so a drift in init or data shows
// up as itself, not as a loss mismatch. Then:
//   ReferenceF64.*  model::Gpt in f64 with optim::AdamW, clip and schedule, step by step,
//                   against the f64 run: the maths, with rounding out of the way.
//   ReferenceF32.*  train::train() on a token file, the path `ternion train` runs, against
//                   the f32 run.
// Regenerate: see README.md (TERNION_WRITE_REFERENCE_INPUTS=DIR, then gpt_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "checkpoint/weights_file.h"
#include "data/sampler.h"
#include "data/test_util.h"
#include "data/token_file.h"
#include "mini_json.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "train/trainer.h"

namespace ternion {
namespace {

using testing::Json;

// The case. Changing any value needs a regenerated golden (ReferenceCase.MatchesGolden says so).
struct Case {
  int64_t vocab_size = 64, block_size = 16, n_layer = 2, n_head = 4, n_embd = 32;
  int64_t seed = 1234;
  int64_t steps = 8, global_batch = 4, micro_batch = 2;  // 2 micro-batches per step
  int64_t warmup_steps = 2;
  double lr = 1e-2, min_lr = 1e-3, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.4;  // the step norms are 1.25..1.58: steps 3 and 5 clip, the others not
  std::string schedule = "cosine";
  // 20 samples of 16 + 1 tokens: steps 5..7 wrap around the data.
  int64_t num_tokens = 20 * 16 + 1;

  std::map<std::string, double> numbers() const {
    return {{"vocab_size", vocab_size}, {"block_size", block_size}, {"n_layer", n_layer},
            {"n_head", n_head},         {"n_embd", n_embd},         {"seed", seed},
            {"steps", steps},           {"global_batch", global_batch},
            {"micro_batch", micro_batch}, {"warmup_steps", warmup_steps}, {"lr", lr},
            {"min_lr", min_lr},         {"weight_decay", weight_decay}, {"beta1", beta1},
            {"beta2", beta2},           {"eps", eps},               {"grad_clip", grad_clip},
            {"num_tokens", num_tokens}};
  }
};

const Case kCase;
const std::string kGolden = std::string(TERNION_REFERENCE_DIR) + "/golden.json";

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A learnable sequence: count up by one, with a pseudo-random jump a quarter of the time.
std::vector<int32_t> make_tokens(const Case& c) {
  std::vector<int32_t> out(static_cast<size_t>(c.num_tokens));
  int64_t t = 0;
  for (int64_t i = 0; i < c.num_tokens; ++i) {
    out[i] = static_cast<int32_t>(t);
    const uint64_t h = splitmix64(static_cast<uint64_t>(i));
    t = (t + 1 + (h % 4 == 0 ? static_cast<int64_t>((h >> 8) % static_cast<uint64_t>(c.vocab_size)) : 0)) %
        c.vocab_size;
  }
  return out;
}

model::GptConfig gpt_config(const Case& c) {
  model::GptConfig g;
  g.vocab_size = c.vocab_size;
  g.block_size = c.block_size;
  g.n_layer = c.n_layer;
  g.n_head = c.n_head;
  g.n_embd = c.n_embd;
  return g;
}

train::Config train_config(const Case& c, const std::string& tokens, const std::string& run_dir) {
  train::Config cfg;
  cfg.run.dir = run_dir;
  cfg.run.seed = c.seed;
  cfg.model.vocab_size = static_cast<int>(c.vocab_size);
  cfg.model.block_size = static_cast<int>(c.block_size);
  cfg.model.n_layer = static_cast<int>(c.n_layer);
  cfg.model.n_head = static_cast<int>(c.n_head);
  cfg.model.n_embd = static_cast<int>(c.n_embd);
  cfg.data.train = tokens;
  cfg.train.steps = static_cast<int>(c.steps);
  cfg.train.global_batch_size = static_cast<int>(c.global_batch);
  cfg.train.micro_batch_size = static_cast<int>(c.micro_batch);
  cfg.optim.lr = c.lr;
  cfg.optim.min_lr = c.min_lr;
  cfg.optim.warmup_steps = static_cast<int>(c.warmup_steps);
  cfg.optim.schedule = c.schedule;
  cfg.optim.weight_decay = c.weight_decay;
  cfg.optim.beta1 = c.beta1;
  cfg.optim.beta2 = c.beta2;
  cfg.optim.eps = c.eps;
  cfg.optim.grad_clip = c.grad_clip;
  cfg.log.interval = 1;
  return cfg;
}

struct Checksum {
  double sum = 0, sum_abs = 0, sum_sq = 0;
};

Checksum checksum(const Tensor& t) {
  Checksum c;
  for (double x : t.to_vector<double>()) c.sum += x, c.sum_abs += std::abs(x), c.sum_sq += x * x;
  return c;
}

// |a - b| <= tol * scale, with a message naming what differs.
void expect_close(double a, double golden, double tol, double scale, const std::string& what) {
  EXPECT_LE(std::abs(a - golden), tol * scale)
      << what << ": ternion " << a << " vs torch " << golden << " (rel. diff "
      << std::abs(a - golden) / scale << ", tolerance " << tol << ")";
}

// A parameter's parts as the golden names them: c_attn.bias by its q, k, v thirds (see
// final_checksums in gpt_reference.py), every other parameter whole.
std::vector<std::pair<std::string, Tensor>> parts(const model::Parameter& p) {
  if (!p.name.ends_with("attn.c_attn.bias")) return {{p.name, p.tensor}};
  const Tensor whole = p.tensor.to(DType::f64);
  const int64_t C = whole.numel() / 3;
  std::vector<std::pair<std::string, Tensor>> out;
  for (int64_t i = 0; i < 3; ++i) {
    std::vector<double> v(whole.data<double>() + i * C, whole.data<double>() + (i + 1) * C);
    out.emplace_back(p.name + "[" + "qkv"[i] + "]", Tensor::from_vector(v, {C}));
  }
  return out;
}

// The final parameters against the golden checksums: each sum within tol of its sum of |x|.
// Parts named in `skip` are left out.
void expect_params_match(const std::vector<model::Parameter>& params, const Json& golden, double tol,
                         const std::string& skip = "") {
  size_t compared = 0;
  for (const auto& p : params) {
    for (const auto& [name, t] : parts(p)) {
      const Json& g = golden[name];
      ++compared;
      if (!skip.empty() && name.ends_with(skip)) continue;
      const Checksum c = checksum(t);
      expect_close(c.sum, g["sum"].number, tol, g["sum_abs"].number, name + " sum");
      expect_close(c.sum_abs, g["sum_abs"].number, tol, g["sum_abs"].number, name + " sum |x|");
      expect_close(c.sum_sq, g["sum_sq"].number, tol, g["sum_sq"].number, name + " sum x^2");
    }
  }
  EXPECT_EQ(compared, golden.object.size());
}

void expect_steps_match(const std::vector<double>& loss, const std::vector<double>& grad_norm,
                        const std::vector<double>& lr, const Json& golden, double tol) {
  const auto gl = golden["loss"].numbers(), gn = golden["grad_norm"].numbers(), glr = golden["lr"].numbers();
  ASSERT_EQ(loss.size(), gl.size());
  for (size_t s = 0; s < gl.size(); ++s) {
    const std::string at = " at step " + std::to_string(s);
    expect_close(loss[s], gl[s], tol, std::abs(gl[s]), "loss" + at);
    expect_close(grad_norm[s], gn[s], tol, std::abs(gn[s]), "grad norm" + at);
    expect_close(lr[s], glr[s], 1e-15, glr[s], "lr" + at);
  }
}

// Initial parameters from the seed, in f32 as the trainer builds them.
model::Gpt initial_model(const Case& c) {
  model::Gpt gpt(gpt_config(c));
  gpt.init(static_cast<uint64_t>(c.seed));
  return gpt;
}

TEST(ReferenceCase, MatchesGolden) {
  const Json golden = Json::parse_file(kGolden);
  for (const auto& [key, value] : kCase.numbers())
    EXPECT_EQ(golden["case"][key].number, value)
        << "case." << key << " differs from the golden's; regenerate it (tests/reference/README.md)";
  EXPECT_EQ(golden["case"]["schedule"].string, kCase.schedule);
}

TEST(ReferenceCase, TokensMatchGolden) {
  const Json golden = Json::parse_file(kGolden);
  const std::vector<int32_t> tokens = make_tokens(kCase);
  const auto g = golden["tokens"].numbers();
  ASSERT_EQ(g.size(), tokens.size());
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(tokens[i], static_cast<int32_t>(g[i])) << "token " << i;
}

// Catches a change in init (RNG, std, names) separately from the training comparisons.
TEST(ReferenceCase, InitMatchesGolden) {
  const Json golden = Json::parse_file(kGolden);
  const model::Gpt gpt = initial_model(kCase);
  ASSERT_EQ(golden["init"].object.size(), gpt.parameters().size());
  for (const auto& p : gpt.parameters()) {
    const Json& g = golden["init"][p.name];
    const std::vector<float> v = p.tensor.to_vector<float>();
    const auto first = g["first"].numbers();
    for (size_t i = 0; i < first.size(); ++i)
      EXPECT_EQ(v[i], static_cast<float>(first[i])) << p.name << "[" << i << "]";
    const Checksum c = checksum(p.tensor);
    expect_close(c.sum, g["sum"].number, 1e-12, g["sum_abs"].number, p.name + " init sum");
    expect_close(c.sum_sq, g["sum_sq"].number, 1e-12, g["sum_sq"].number, p.name + " init sum x^2");
  }
}

// One training run's record, as the golden has it.
struct TrainRun {
  std::vector<double> loss, grad_norm, lr;
  std::vector<model::Parameter> params;  // after the last step
};

// Deliberate mistakes, to show that the comparison notices each (ReferenceF64.Detects...).
struct Mistake {
  double lr_scale = 1;
  bool decay_everything = false;  // weight decay on biases and LayerNorm too
  double eps = kCase.eps;
  double accum_scale = 1;         // 1: loss / accum per micro-batch (nanoGPT); 0: sum
};

// model::Gpt, optim::AdamW, clip_grad_norm and learning_rate in f64, composed as the trainer
// composes them, on batches from the trainer's sampler reading a token file.
TrainRun run_f64(const Mistake& mistake = {}) {
  data::testing::TempDir dir;
  const std::string tokens = dir.file("tokens.h5");
  data::write_token_file(tokens, make_tokens(kCase), kCase.vocab_size, "test");
  data::SamplerOptions so;
  so.block_size = kCase.block_size;
  so.global_batch = kCase.global_batch;
  data::BatchSampler sampler(data::open_token_source(tokens), so);

  model::Gpt gpt = initial_model(kCase);
  std::vector<optim::ParamRef> refs;
  for (auto& p : gpt.parameters()) {
    p.tensor = p.tensor.to(DType::f64);
    autograd::set_requires_grad(p.tensor);
    refs.push_back({p.name, p.tensor, p.weight_decay || mistake.decay_everything});
  }
  optim::AdamW opt(refs, {kCase.beta1, kCase.beta2, mistake.eps, kCase.weight_decay});
  const int64_t accum = kCase.global_batch / kCase.micro_batch;
  const double loss_scale = mistake.accum_scale == 1 ? 1.0 / static_cast<double>(accum) : 1.0;
  Tensor idx = Tensor::empty({kCase.micro_batch, kCase.block_size}, DType::i32);
  Tensor tgt = Tensor::empty({kCase.micro_batch, kCase.block_size}, DType::i32);
  TrainRun run;
  for (int64_t step = 0; step < kCase.steps; ++step) {
    run.lr.push_back(optim::learning_rate(step, kCase.steps, kCase.warmup_steps, kCase.lr, kCase.min_lr,
                                          kCase.schedule));
    for (auto& p : gpt.parameters()) autograd::zero_grad(p.tensor);
    double l = 0;
    for (int64_t micro = 0; micro < accum; ++micro) {
      sampler.fill(step, micro * kCase.micro_batch, kCase.micro_batch, idx.data<int32_t>(), tgt.data<int32_t>());
      Tensor micro_loss = gpt.loss(idx, tgt);
      l += micro_loss.item() / static_cast<double>(accum);
      autograd::backward(autograd::scale(micro_loss, loss_scale));
    }
    run.loss.push_back(l);
    run.grad_norm.push_back(optim::clip_grad_norm(refs, kCase.grad_clip));
    opt.step(run.lr.back() * mistake.lr_scale);
  }
  run.params = gpt.parameters();
  return run;
}

// `ternion train`'s code path end to end: token file, sampler, trainer loop, model.h5.
TrainRun run_trainer(double lr_scale = 1) {
  data::testing::TempDir dir;
  const std::string tokens = dir.file("tokens.h5");
  data::write_token_file(tokens, make_tokens(kCase), kCase.vocab_size, "test");
  train::Config config = train_config(kCase, tokens, dir.file("run"));
  config.optim.lr *= lr_scale;
  config.optim.min_lr *= lr_scale;
  std::ostringstream log;
  const train::TrainSummary summary = train::train(config, log);
  TrainRun run;
  for (const auto& m : summary.steps) {
    run.loss.push_back(m.loss);
    run.grad_norm.push_back(m.grad_norm);
    run.lr.push_back(m.lr / lr_scale);
  }
  model::Gpt trained(gpt_config(kCase));
  std::vector<checkpoint::NamedTensor> named;
  for (auto& p : trained.parameters()) named.push_back({p.name, p.tensor});
  checkpoint::read_weights(summary.weights_path, named);
  run.params = trained.parameters();
  return run;
}

// Largest relative difference of the losses from the golden's.
double max_loss_diff(const TrainRun& run, const Json& golden) {
  const auto g = golden["loss"].numbers();
  double worst = 0;
  for (size_t s = 0; s < g.size() && s < run.loss.size(); ++s)
    worst = std::max(worst, std::abs(run.loss[s] - g[s]) / std::abs(g[s]));
  return worst;
}

// Both sides f64: what is left is summation order (measured: <= 4e-15), so 1e-12.
constexpr double kTolF64 = 1e-12;
// Both sides f32 with different summation orders (measured: <= 3e-7 from torch f32; torch
// f32 is itself up to 2e-7 from torch f64, golden "f32_vs_f64"), so 1e-5.
constexpr double kTolF32 = 1e-5;

TEST(ReferenceF64, StepsMatchTorch) {
  const Json golden = Json::parse_file(kGolden);
  const TrainRun run = run_f64();
  expect_steps_match(run.loss, run.grad_norm, run.lr, golden["f64"], kTolF64);
  // The key bias gets an exactly zero gradient (it shifts every score of a softmax row by
  // the same q.b_k), so it stays at 0 up to rounding noise on both sides; checked apart.
  expect_params_match(run.params, golden["f64"]["final"], kTolF64, "c_attn.bias[k]");
  for (const auto& p : run.params)
    for (const auto& [name, t] : parts(p))
      if (name.ends_with("c_attn.bias[k]")) {
        EXPECT_LT(checksum(t).sum_abs, 1e-9) << name;
        EXPECT_LT(golden["f64"]["final"][name]["sum_abs"].number, 1e-9) << name;
      }
}

// The oracle has teeth: small, plausible mistakes move the losses far outside the tolerance.
TEST(ReferenceF64, DetectsSmallMistakes) {
  const Json golden = Json::parse_file(kGolden)["f64"];
  EXPECT_GT(max_loss_diff(run_f64({.lr_scale = 1 + 1e-6}), golden), 100 * kTolF64) << "lr off by 1e-6";
  EXPECT_GT(max_loss_diff(run_f64({.decay_everything = true}), golden), 100 * kTolF64) << "decay on biases";
  EXPECT_GT(max_loss_diff(run_f64({.eps = 1e-7}), golden), 100 * kTolF64) << "eps 1e-7";
  EXPECT_GT(max_loss_diff(run_f64({.accum_scale = 0}), golden), 100 * kTolF64) << "loss summed over micro-batches";
}

TEST(ReferenceF32, TrainMatchesTorch) {
  const Json golden = Json::parse_file(kGolden);
  const TrainRun run = run_trainer();
  expect_steps_match(run.loss, run.grad_norm, run.lr, golden["f32"], kTolF32);
  // The key bias's gradient is exactly zero in exact arithmetic; in f32 Adam turns its
  // rounding noise into steps of about lr (torch f32 and f64 differ by 1e-4 there too).
  expect_params_match(run.params, golden["f32"]["final"], kTolF32, "c_attn.bias[k]");
}

TEST(ReferenceF32, DetectsASmallLrChange) {
  const Json golden = Json::parse_file(kGolden);
  EXPECT_GT(max_loss_diff(run_trainer(1 + 1e-3), golden["f32"]), 3 * kTolF32);
}

// Not a check: with TERNION_WRITE_REFERENCE_INPUTS=DIR, writes the inputs gpt_reference.py
// reads (case.json, weights.h5, tokens.h5) into DIR.
TEST(ReferenceInputs, Write) {
  const char* out = std::getenv("TERNION_WRITE_REFERENCE_INPUTS");
  if (out == nullptr || *out == 0) GTEST_SKIP() << "set TERNION_WRITE_REFERENCE_INPUTS=DIR to write inputs";
  const std::filesystem::path dir(out);
  std::filesystem::create_directories(dir);
  std::ofstream c(dir / "case.json");
  c.precision(17);
  c << "{\n";
  for (const auto& [key, value] : kCase.numbers()) c << "  \"" << key << "\": " << value << ",\n";
  c << "  \"schedule\": \"" << kCase.schedule << "\"\n}\n";
  ASSERT_TRUE(c.good());
  const model::Gpt gpt = initial_model(kCase);
  std::vector<checkpoint::NamedTensor> named;
  for (const auto& p : gpt.parameters()) named.push_back({p.name, p.tensor});
  checkpoint::write_weights((dir / "weights.h5").string(), named,
                            {{"vocab_size", kCase.vocab_size}, {"block_size", kCase.block_size},
                             {"n_layer", kCase.n_layer}, {"n_head", kCase.n_head}, {"n_embd", kCase.n_embd}});
  data::write_token_file((dir / "tokens.h5").string(), make_tokens(kCase), kCase.vocab_size, "test");
}

}  // namespace
}  // namespace ternion

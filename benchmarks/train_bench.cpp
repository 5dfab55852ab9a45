// train_bench: CPU training throughput of a GPT, in tokens/s, timing the trainer's step
// (train/trainer.cpp) without its data and logging: zero_grad, forward + cross-entropy,
// backward, global-norm clip, AdamW. scripts/bench_train.sh runs it beside
// benchmarks/torch_train_bench.py (the same model and step in PyTorch eager).
//
// Usage: train_bench [--threads N] [--steps S] [--warmup W] [--layers L] [--embd C]
//                    [--heads H] [--block T] [--vocab V] [--batch B] [--phases]
// Defaults: the benchmark model, L=6 C=384 H=6 T=256 V=256, B=4, fp32; 3 warmup
// steps (excluded), 10 timed steps. Every step draws fresh random tokens (a fixed seed).
// --phases also times forward, backward, clip and AdamW apart (adds a little overhead).
// Prints one line per timed step, then a JSON summary line starting with "RESULT ".
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "model/gpt.h"
#include "optim/adamw.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  int threads = 1, steps = 10, warmup = 3;
  int64_t layers = 6, embd = 384, heads = 6, block = 256, vocab = 256, batch = 4;
  bool phases = false;
};

// Returns false (after saying why) on a bad command line.
bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) -> long long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "train_bench: %s needs a value\n", flag);
        return -1;
      }
      return std::atoll(argv[++i]);
    };
    const std::string a = argv[i];
    if (a == "--threads") o.threads = static_cast<int>(value("--threads"));
    else if (a == "--steps") o.steps = static_cast<int>(value("--steps"));
    else if (a == "--warmup") o.warmup = static_cast<int>(value("--warmup"));
    else if (a == "--layers") o.layers = value("--layers");
    else if (a == "--embd") o.embd = value("--embd");
    else if (a == "--heads") o.heads = value("--heads");
    else if (a == "--block") o.block = value("--block");
    else if (a == "--vocab") o.vocab = value("--vocab");
    else if (a == "--batch") o.batch = value("--batch");
    else if (a == "--phases") o.phases = true;
    else {
      std::fprintf(stderr, "train_bench: unknown argument '%s' (see the file's header)\n", a.c_str());
      return false;
    }
  }
  return o.threads > 0 && o.steps > 0 && o.warmup >= 0 && o.layers > 0 && o.embd > 0 && o.heads > 0 &&
         o.block > 0 && o.vocab > 0 && o.batch > 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ternion;
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "train_bench: every value must be positive (warmup may be 0)\n");
    return 2;
  }
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);

  model::GptConfig gc;
  gc.n_layer = o.layers;
  gc.n_embd = o.embd;
  gc.n_head = o.heads;
  gc.block_size = o.block;
  gc.vocab_size = o.vocab;
  model::Gpt gpt(gc);
  gpt.init(1337);
  std::vector<optim::ParamRef> refs;
  for (auto& p : gpt.parameters()) refs.push_back({p.name, p.tensor, p.weight_decay});
  optim::AdamW opt(refs, {0.9, 0.95, 1e-8, 0.1});

  Tensor idx = Tensor::empty({o.batch, o.block}, DType::i32);
  Tensor tgt = Tensor::empty({o.batch, o.block}, DType::i32);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(o.vocab - 1));

  const double tokens_per_step = static_cast<double>(o.batch * o.block);
  std::vector<double> secs;
  double phase[4] = {0, 0, 0, 0};  // forward, backward, clip, adamw (timed steps only)
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    for (int64_t i = 0; i < idx.numel(); ++i) idx.data<int32_t>()[i] = token(rng), tgt.data<int32_t>()[i] = token(rng);
    const auto t0 = Clock::now();
    for (auto& p : gpt.parameters()) autograd::zero_grad(p.tensor);
    Tensor loss = gpt.loss(idx, tgt);
    const double l = loss.item();
    const double t_fwd = o.phases ? since(t0) : 0;
    autograd::backward(autograd::scale(loss, 1.0));  // one micro-batch: the trainer's 1/accum
    const double t_bwd = o.phases ? since(t0) : 0;
    const double norm = optim::clip_grad_norm(refs, 1.0);
    const double t_clip = o.phases ? since(t0) : 0;
    opt.step(6e-4);
    const double s = since(t0);
    if (step < o.warmup) continue;
    secs.push_back(s);
    if (o.phases) {
      phase[0] += t_fwd, phase[1] += t_bwd - t_fwd, phase[2] += t_clip - t_bwd, phase[3] += s - t_clip;
    }
    std::printf("step %d: %.1f ms, %.0f tokens/s, loss %.4f, grad norm %.4f\n", step - o.warmup, 1e3 * s,
                tokens_per_step / s, l, norm);
  }
  std::vector<double> sorted = secs;
  std::sort(sorted.begin(), sorted.end());
  double total = 0;
  for (double s : secs) total += s;
  const size_t n = sorted.size();  // the median as Python's statistics.median takes it
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  std::printf("RESULT {\"impl\": \"ternion\", \"threads\": %d, \"steps\": %d, \"tokens_per_step\": %.0f, "
              "\"tokens_per_sec_mean\": %.1f, \"tokens_per_sec_median\": %.1f, \"tokens_per_sec_best\": %.1f",
              o.threads, o.steps, tokens_per_step, tokens_per_step * o.steps / total, tokens_per_step / median,
              tokens_per_step / sorted.front());
  if (o.phases)
    std::printf(", \"ms_forward\": %.2f, \"ms_backward\": %.2f, \"ms_clip\": %.2f, \"ms_adamw\": %.2f",
                1e3 * phase[0] / o.steps, 1e3 * phase[1] / o.steps, 1e3 * phase[2] / o.steps,
                1e3 * phase[3] / o.steps);
  std::printf("}\n");
  return 0;
}

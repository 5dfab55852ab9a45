// gpt2_bench: end-to-end training throughput of GPT-2 124M on one GPU, in tokens/s and
// MFU, timing the trainer's step (train/trainer.cpp) without its data and logging:
// zero_grad, upload of the micro-batch, forward + cross-entropy, backward, global-norm
// clip, AdamW, all on the device.
//
//   MFU = flops_per_token × tokens/s ÷ peak,  flops_per_token = 6N + 6·L·C·T
//   (PaLM appendix B; N excludes the position embedding; model::Gpt::flops_per_token)
//
// Usage: gpt2_bench [--steps S] [--warmup W] [--batch B] [--accum A] [--precision bf16|fp32]
//                   [--peak-tflops P] [--device I] [--layers L] [--embd C] [--heads H]
//                   [--block T] [--vocab V] [--recompute none|selective|full]
// Defaults: GPT-2 124M (L=12, C=768, H=12, T=1024, V=50304 = 50257 padded to a multiple of
// 128), B=16, A=1, bf16 (f32 master weights and AdamW state), peak 989 TFLOP/s (H100 SXM
// bf16 dense), 5 warm-up steps (excluded), 20 timed steps. Tokens are synthetic (a fixed
// seed, fresh every micro-batch). The device is synchronised at the end of every step.
// --recompute picks the activation checkpointing of every layer (model::ActivationCheckpointing;
// default none). Prints the device, one line per timed step (with the bytes the graph saved
// for backward at its peak), then a JSON summary line starting "RESULT ".
// scripts/bench_gpt2.sh builds and runs it (CUDA builds only).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "core/allocator.h"
#include "model/gpt.h"
#include "optim/adamw.h"

namespace {

using namespace ternion;
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  int steps = 20, warmup = 5, device = 0;
  int64_t layers = 12, embd = 768, heads = 12, block = 1024, vocab = 50304, batch = 16, accum = 1;
  std::string precision = "bf16";
  double peak_tflops = 989.0;
  std::string recompute = "none";
};

// Returns false (after saying why) on a bad command line.
bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpt2_bench: %s needs a value\n", a.c_str());
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (!(v = value())) return false;
    if (a == "--steps") o.steps = std::atoi(v);
    else if (a == "--warmup") o.warmup = std::atoi(v);
    else if (a == "--device") o.device = std::atoi(v);
    else if (a == "--layers") o.layers = std::atoll(v);
    else if (a == "--embd") o.embd = std::atoll(v);
    else if (a == "--heads") o.heads = std::atoll(v);
    else if (a == "--block") o.block = std::atoll(v);
    else if (a == "--vocab") o.vocab = std::atoll(v);
    else if (a == "--batch") o.batch = std::atoll(v);
    else if (a == "--accum") o.accum = std::atoll(v);
    else if (a == "--precision") o.precision = v;
    else if (a == "--recompute") o.recompute = v;
    else if (a == "--peak-tflops") o.peak_tflops = std::atof(v);
    else {
      std::fprintf(stderr, "gpt2_bench: unknown option %s\n", a.c_str());
      return false;
    }
  }
  if (o.steps < 1 || o.warmup < 0 || o.batch < 1 || o.accum < 1 || o.peak_tflops <= 0 ||
      (o.precision != "bf16" && o.precision != "fp32") ||
      (o.recompute != "none" && o.recompute != "selective" && o.recompute != "full")) {
    std::fprintf(stderr, "gpt2_bench: need steps >= 1, warmup >= 0, batch >= 1, accum >= 1, "
                         "peak-tflops > 0, precision bf16 or fp32, recompute none, selective or full\n");
    return false;
  }
  return true;
}

void fill(std::mt19937& rng, int64_t vocab, Tensor& idx, Tensor& tgt) {
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(vocab - 1));
  int32_t* pi = idx.data<int32_t>();
  int32_t* pt = tgt.data<int32_t>();
  const int64_t n = idx.numel();
  for (int64_t i = 0; i < n; ++i) pi[i] = d(rng);
  for (int64_t i = 0; i < n; ++i) pt[i] = i + 1 < n ? pi[i + 1] : d(rng);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  if (!cuda_available()) {
    std::printf("gpt2_bench: needs CUDA (no GPU visible, or a CPU-only build)\n");
    return 0;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, o.device) != cudaSuccess) {
    std::fprintf(stderr, "gpt2_bench: cannot query cuda:%d\n", o.device);
    return 1;
  }
  const Device dev = Device::cuda(o.device);
  try {
    model::GptConfig c;
    c.vocab_size = o.vocab;
    c.block_size = o.block;
    c.n_layer = o.layers;
    c.n_head = o.heads;
    c.n_embd = o.embd;
    c.activation_checkpointing = o.recompute == "full"        ? model::ActivationCheckpointing::kFull
                                 : o.recompute == "selective" ? model::ActivationCheckpointing::kSelective
                                                              : model::ActivationCheckpointing::kNone;
    c.device = dev;
    c.compute_dtype = o.precision == "bf16" ? DType::bf16 : DType::f32;
    model::Gpt gpt(c);
    gpt.init(1337);
    std::vector<optim::ParamRef> refs;
    for (auto& p : gpt.parameters()) refs.push_back({p.name, p.tensor, p.weight_decay});
    optim::AdamW opt(refs, {0.9, 0.95, 1e-8, 0.1});

    const double flops_tok = gpt.flops_per_token(), peak = o.peak_tflops * 1e12;
    const int64_t tokens_per_step = o.batch * o.accum * o.block;
    std::printf("gpt2_bench: %s (cuda:%d, sm_%d%d, %.0f GiB); %lld parameters, L=%lld C=%lld H=%lld T=%lld "
                "V=%lld; %s, recompute %s; batch %lld x %lld micro x %lld tokens; %.3g FLOP/token; peak %.0f "
                "TFLOP/s\n",
                prop.name, o.device, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0,
                static_cast<long long>(gpt.num_parameters()), static_cast<long long>(o.layers),
                static_cast<long long>(o.embd), static_cast<long long>(o.heads), static_cast<long long>(o.block),
                static_cast<long long>(o.vocab), o.precision.c_str(), o.recompute.c_str(),
                static_cast<long long>(o.batch), static_cast<long long>(o.accum), static_cast<long long>(o.block), flops_tok, o.peak_tflops);

    Tensor idx = Tensor::empty({o.batch, o.block}, DType::i32), tgt = Tensor::empty({o.batch, o.block}, DType::i32);
    Tensor didx = Tensor::empty(idx.shape(), DType::i32, dev), dtgt = Tensor::empty(tgt.shape(), DType::i32, dev);
    std::mt19937 rng(1234);
    std::vector<double> tps;
    double last_loss = 0;
    size_t saved_peak = 0;
    for (int step = 0; step < o.warmup + o.steps; ++step) {
      cudaDeviceSynchronize();
      const auto t0 = Clock::now();
      autograd::reset_saved_peak();
      for (auto& p : gpt.parameters()) autograd::zero_grad(p.tensor);
      double loss_sum = 0;
      for (int64_t m = 0; m < o.accum; ++m) {
        fill(rng, o.vocab, idx, tgt);
        didx.copy_(idx);
        dtgt.copy_(tgt);
        Tensor loss = gpt.loss(didx, dtgt);
        loss_sum += loss.item();
        autograd::backward(autograd::scale(loss, 1.0 / static_cast<double>(o.accum)));
      }
      const double norm = optim::clip_grad_norm(refs, 1.0);
      opt.step(6e-4);
      cudaDeviceSynchronize();
      const double secs = since(t0);
      saved_peak = autograd::saved_stats().peak;
      last_loss = loss_sum / static_cast<double>(o.accum);
      const double t = static_cast<double>(tokens_per_step) / secs;
      const bool timed = step >= o.warmup;
      if (timed) tps.push_back(t);
      std::printf("%s %3d | loss %.4f | grad norm %.3f | %8.1f ms | %10.0f tok/s | MFU %5.1f%% | mem %.0f MiB | "
                  "saved peak %.0f MiB\n",
                  timed ? "step  " : "warmup", step + 1, last_loss, norm, secs * 1e3, t,
                  100.0 * flops_tok * t / peak, allocator_for(dev).stats().allocated / 1048576.0,
                  saved_peak / 1048576.0);
      std::fflush(stdout);
    }
    std::vector<double> sorted = tps;
    std::sort(sorted.begin(), sorted.end());
    double mean = 0;
    for (double t : tps) mean += t / static_cast<double>(tps.size());
    const double median = sorted[sorted.size() / 2];
    std::printf("RESULT {\"device\": \"%s\", \"precision\": \"%s\", \"recompute\": \"%s\", \"params\": %lld, "
                "\"batch\": %lld, \"accum\": %lld, \"block\": %lld, \"steps\": %d, \"tokens_per_sec_mean\": %.1f, "
                "\"tokens_per_sec_median\": %.1f, \"tokens_per_sec_best\": %.1f, \"mfu_median\": %.4f, "
                "\"peak_tflops\": %.1f, \"final_loss\": %.4f, \"activations_peak\": %zu}\n",
                prop.name, o.precision.c_str(), o.recompute.c_str(), static_cast<long long>(gpt.num_parameters()),
                static_cast<long long>(o.batch), static_cast<long long>(o.accum), static_cast<long long>(o.block),
                o.steps, mean, median, sorted.back(), flops_tok * median / peak, o.peak_tflops, last_loss,
                saved_peak);
  } catch (const Error& e) {
    std::fprintf(stderr, "gpt2_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

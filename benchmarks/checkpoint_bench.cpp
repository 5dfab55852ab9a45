// Checkpoint write throughput and the time a save blocks training, for the full training
// state of a GPT (parameters + AdamW moments = 3 x 4 bytes per parameter).
//   checkpoint_bench DIR [N_PARAMS_MILLIONS=124] [REPEATS=3]
// Prints one line per mode; scripts/bench_checkpoint.sh runs it beside dd with fsync on
// the same filesystem and docs/performance.md records the figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/tensor.h"

using namespace ternion;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// GPT-2-like tensor shapes adding up to about `n` parameters (12 blocks of 12·C² + a
// vocab-sized embedding), so the file holds realistically sized datasets.
std::vector<std::pair<std::string, Tensor>> make_state(int64_t n) {
  const int64_t C = 768, V = 50304;
  std::vector<std::pair<std::string, Tensor>> out;
  int64_t total = 0;
  auto add = [&](const std::string& name, Shape s) {
    Tensor t = Tensor::empty(s, DType::f32);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f;
    total += t.numel();
    out.emplace_back(name, t);
  };
  add("transformer.wte.weight", {V, C});
  for (int l = 0; total < n; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    add(p + "attn.c_attn.weight", {3 * C, C});
    add(p + "attn.c_proj.weight", {C, C});
    add(p + "mlp.c_fc.weight", {4 * C, C});
    add(p + "mlp.c_proj.weight", {C, 4 * C});
  }
  return out;
}

checkpoint::State stage(const std::vector<std::pair<std::string, Tensor>>& params, int64_t step) {
  checkpoint::State s;
  s.step = step;
  for (const auto& [name, t] : params) {
    s.tensors.push_back(checkpoint::whole("param/" + name, t));
    s.tensors.push_back(checkpoint::whole("optim/exp_avg/" + name, t));
    s.tensors.push_back(checkpoint::whole("optim/exp_avg_sq/" + name, t));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: checkpoint_bench DIR [N_PARAMS_MILLIONS=124] [REPEATS=3]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int64_t n = static_cast<int64_t>((argc > 2 ? std::atof(argv[2]) : 124.0) * 1e6);
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  const auto params = make_state(n);
  int64_t numel = 0;
  for (const auto& p : params) numel += p.second.numel();
  const double bytes = 3.0 * 4.0 * static_cast<double>(numel);
  std::printf("state: %.1fM parameters, %.2f GB (parameters + 2 AdamW moments, f32)\n", numel / 1e6, bytes / 1e9);
  int64_t step = 0;
  for (bool async : {false, true}) {
    std::filesystem::remove_all(dir);
    checkpoint::Checkpointer ck(dir, checkpoint::Group::local(), {async, 1});
    double best_total = 1e30, best_block = 1e30, best_stage = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = Clock::now();
      checkpoint::State s = stage(params, ++step);
      const double staged = since(t0);
      ck.save(std::move(s));
      const double blocked = since(t0);
      auto timing = ck.finish();
      const double total = since(t0);
      best_stage = std::min(best_stage, staged);
      best_block = std::min(best_block, blocked);
      best_total = std::min(best_total, total);
      (void)timing;
    }
    std::printf("%-5s save: blocked %8.3f s (staging copy %.3f s) | total to commit %8.3f s | %7.0f MB/s\n",
                async ? "async" : "sync", best_block, best_stage, best_total, bytes / best_total / 1e6);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

// cpu_ops_bench: the CPU kernels at GPT sizes, each checked once against a naive f64
// reference (validate.h) before anything is timed. Argument 0 of every benchmark is the
// OpenMP thread count; the OpenMP build of OpenBLAS follows it.
// Sizes: B = 4, T = 256, N = B*T = 1024 rows; C = 384 (the tiny CPU model, 6 heads) and
// C = 768 (GPT-2 small, 12 heads); head size D = 64. All tensors f32.
// Counters, decimal units per second of wall time:
//   GFLOP/s  gemm: 2 M N K. attention: useful causal flops only, the T(T+1)/2 unmasked
//            scores of each (b,h): every T x T x D GEMM counts 2 D T(T+1)/2 = D T(T+1); the
//            forward has 2 such GEMMs (q k^T, P v), the backward 4. The kernel runs dense
//            GEMMs, so it executes about twice what is counted.
//   GB/s     compulsory traffic: every input read once, every output written once (dw, db
//            read and written). Passes that re-read a row from cache are not counted.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "kernels/kernels.h"
#include "validate.h"

namespace ternion::bench {
namespace {

namespace k = ternion::kernels::cpu;

constexpr int64_t kB = 4, kT = 256, kN = kB * kT, kD = 64;
constexpr double kEps = 1e-5;
constexpr double kF32 = sizeof(float);

Tensor randn(const Shape& shape, std::string_view name) {
  Tensor t = Tensor::empty(shape, DType::f32);
  init_normal(t, 42, name, 0.0, 1.0);
  return t;
}

void set_threads(const benchmark::State& state) {
  omp_set_num_threads(static_cast<int>(state.range(0)));
}

void set_gflops(benchmark::State& state, double flops_per_iter) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void set_gbytes(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Runs `run` once untimed (first touch of the outputs, OpenMP and OpenBLAS thread start),
// then times it.
template <typename F>
void time_loop(benchmark::State& state, F&& run) {
  run();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
}

std::string label(const std::vector<std::pair<const char*, int64_t>>& dims) {
  std::string s;
  for (const auto& [name, value] : dims) {
    if (!s.empty()) s.push_back(' ');
    s.append(name).append("=").append(std::to_string(value));
  }
  return s;
}

// ---- matmul: the MLP up-projection x[N,C] w[4C,C]^T and its two backward GEMMs ----

enum class LinearGemm { fwd, dx, dw };

void BM_linear_gemm(benchmark::State& state, LinearGemm which) {
  validate_gemm();
  set_threads(state);
  const int64_t C = state.range(1), F = 4 * C;
  Tensor x = randn({1, kN, C}, "x"), w = randn({1, F, C}, "w"), dy = randn({1, kN, F}, "dy");
  Tensor y = Tensor::empty({1, kN, F}), dx = Tensor::empty({1, kN, C});
  Tensor dw = Tensor::empty({1, F, C});
  time_loop(state, [&] {
    switch (which) {
      case LinearGemm::fwd: k::gemm(x, false, w, true, y, 1.0, 0.0); break;     // x w^T
      case LinearGemm::dx: k::gemm(dy, false, w, false, dx, 1.0, 0.0); break;   // dy w
      case LinearGemm::dw: k::gemm(dy, true, x, false, dw, 1.0, 0.0); break;    // dy^T x
    }
  });
  state.SetLabel(label({{"N", kN}, {"C", C}, {"4C", F}}));
  set_gflops(state, 2.0 * kN * C * F);
}

// ---- layernorm over x[N,C] ----

void BM_layernorm_forward(benchmark::State& state) {
  validate_layernorm();
  set_threads(state);
  const int64_t C = state.range(1);
  Tensor x = randn({kN, C}, "x"), w = randn({C}, "w"), b = randn({C}, "b");
  Tensor y = Tensor::empty({kN, C}), mean = Tensor::empty({kN}), rstd = Tensor::empty({kN});
  time_loop(state, [&] { k::layernorm_forward(x, w, b, kEps, y, mean, rstd); });
  state.SetLabel(label({{"N", kN}, {"C", C}}));
  set_gbytes(state, kF32 * (2.0 * kN * C + 2.0 * C + 2.0 * kN));  // x, y; w, b; mean, rstd
}

void BM_layernorm_backward(benchmark::State& state) {
  validate_layernorm();
  set_threads(state);
  const int64_t C = state.range(1);
  Tensor x = randn({kN, C}, "x"), w = randn({C}, "w"), b = randn({C}, "b");
  Tensor dy = randn({kN, C}, "dy");
  Tensor y = Tensor::empty({kN, C}), mean = Tensor::empty({kN}), rstd = Tensor::empty({kN});
  k::layernorm_forward(x, w, b, kEps, y, mean, rstd);
  Tensor dx = Tensor::empty({kN, C}), dw = Tensor::zeros({C}), db = Tensor::zeros({C});
  time_loop(state, [&] { k::layernorm_backward(x, w, mean, rstd, dy, dx, dw, db); });
  state.SetLabel(label({{"N", kN}, {"C", C}}));
  // x, dy, dx; w; mean, rstd; dw, db read and written
  set_gbytes(state, kF32 * (3.0 * kN * C + C + 2.0 * kN + 4.0 * C));
}

// ---- causal attention, q, k, v [B,H,T,D] ----

double causal_gemm_flops(int64_t H) { return 1.0 * kB * H * kD * kT * (kT + 1); }

void BM_attention_forward(benchmark::State& state) {
  validate_attention();
  set_threads(state);
  const int64_t H = state.range(1);
  const Shape s = {kB, H, kT, kD};
  Tensor q = randn(s, "q"), kk = randn(s, "k"), v = randn(s, "v");
  Tensor out = Tensor::empty(s), lse = Tensor::empty({kB, H, kT});
  time_loop(state, [&] { k::attention_forward(q, kk, v, out, lse); });
  state.SetLabel(label({{"B", kB}, {"H", H}, {"T", kT}, {"D", kD}}));
  set_gflops(state, 2.0 * causal_gemm_flops(H));
}

void BM_attention_forward_backward(benchmark::State& state) {
  validate_attention();
  set_threads(state);
  const int64_t H = state.range(1);
  const Shape s = {kB, H, kT, kD};
  Tensor q = randn(s, "q"), kk = randn(s, "k"), v = randn(s, "v"), dout = randn(s, "dout");
  Tensor out = Tensor::empty(s), lse = Tensor::empty({kB, H, kT});
  Tensor dq = Tensor::empty(s), dk = Tensor::empty(s), dv = Tensor::empty(s);
  time_loop(state, [&] {
    k::attention_forward(q, kk, v, out, lse);
    k::attention_backward(q, kk, v, out, lse, dout, dq, dk, dv);
  });
  state.SetLabel(label({{"B", kB}, {"H", H}, {"T", kT}, {"D", kD}}));
  set_gflops(state, 6.0 * causal_gemm_flops(H));
}

// ---- gelu on the MLP hidden activations [N,4C] ----

void BM_gelu_forward(benchmark::State& state) {
  validate_gelu();
  set_threads(state);
  const int64_t n = kN * 4 * state.range(1);
  Tensor x = randn({n}, "x"), y = Tensor::empty({n});
  time_loop(state, [&] { k::gelu_forward(x, y); });
  state.SetLabel(label({{"N", kN}, {"4C", 4 * state.range(1)}}));
  set_gbytes(state, kF32 * 2.0 * n);  // x, y
}

void BM_gelu_backward(benchmark::State& state) {
  validate_gelu();
  set_threads(state);
  const int64_t n = kN * 4 * state.range(1);
  Tensor x = randn({n}, "x"), dy = randn({n}, "dy"), dx = Tensor::empty({n});
  time_loop(state, [&] { k::gelu_backward(x, dy, dx); });
  state.SetLabel(label({{"N", kN}, {"4C", 4 * state.range(1)}}));
  set_gbytes(state, kF32 * 3.0 * n);  // x, dy, dx
}

// ---- cross-entropy over logits[N,V]; N = B*T, or T alone at V = 50304 (logits 51 MB) ----

struct CrossEntropyCase {
  int64_t N, V;
  Tensor logits, targets, lse, loss;
  explicit CrossEntropyCase(int64_t vocab) : N(vocab > 4096 ? kT : kN), V(vocab) {
    logits = randn({N, V}, "logits");
    std::vector<int32_t> tg(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n)
      tg[static_cast<size_t>(n)] = static_cast<int32_t>((n * 7919) % V);
    targets = Tensor::from_vector<int32_t>(tg, {N});
    lse = Tensor::empty({N});
    loss = Tensor::empty({1});
  }
};

void BM_cross_entropy_forward(benchmark::State& state) {
  validate_cross_entropy();
  set_threads(state);
  CrossEntropyCase ce(state.range(1));
  time_loop(state, [&] { k::cross_entropy_forward(ce.logits, ce.targets, ce.lse, ce.loss); });
  state.SetLabel(label({{"N", ce.N}, {"V", ce.V}}));
  set_gbytes(state, kF32 * (1.0 * ce.N * ce.V + 2.0 * ce.N + 1.0));  // logits; targets, lse; loss
}

void BM_cross_entropy_backward(benchmark::State& state) {
  validate_cross_entropy();
  set_threads(state);
  CrossEntropyCase ce(state.range(1));
  k::cross_entropy_forward(ce.logits, ce.targets, ce.lse, ce.loss);
  Tensor dlogits = Tensor::empty({ce.N, ce.V});
  time_loop(state, [&] { k::cross_entropy_backward(ce.logits, ce.targets, ce.lse, 1.0, dlogits); });
  state.SetLabel(label({{"N", ce.N}, {"V", ce.V}}));
  set_gbytes(state, kF32 * (2.0 * ce.N * ce.V + 2.0 * ce.N));  // logits, dlogits; targets, lse
}

// ---- argument grids: threads x size ----

void grid(benchmark::internal::Benchmark* b, const char* size_name,
          std::initializer_list<int64_t> sizes) {
  b->ArgNames({"threads", size_name})->UseRealTime()->Unit(benchmark::kMicrosecond);
  for (int64_t size : sizes)
    for (int64_t threads : {1, 2}) b->Args({threads, size});
}
void by_channels(benchmark::internal::Benchmark* b) { grid(b, "C", {384, 768}); }
void by_heads(benchmark::internal::Benchmark* b) { grid(b, "H", {6, 12}); }
void by_vocab(benchmark::internal::Benchmark* b) { grid(b, "V", {256, 50304}); }

BENCHMARK_CAPTURE(BM_linear_gemm, fwd, LinearGemm::fwd)->Apply(by_channels);
BENCHMARK_CAPTURE(BM_linear_gemm, dx, LinearGemm::dx)->Apply(by_channels);
BENCHMARK_CAPTURE(BM_linear_gemm, dw, LinearGemm::dw)->Apply(by_channels);
BENCHMARK(BM_layernorm_forward)->Apply(by_channels);
BENCHMARK(BM_layernorm_backward)->Apply(by_channels);
BENCHMARK(BM_attention_forward)->Apply(by_heads);
BENCHMARK(BM_attention_forward_backward)->Apply(by_heads);
BENCHMARK(BM_gelu_forward)->Apply(by_channels);
BENCHMARK(BM_gelu_backward)->Apply(by_channels);
BENCHMARK(BM_cross_entropy_forward)->Apply(by_vocab);
BENCHMARK(BM_cross_entropy_backward)->Apply(by_vocab);

}  // namespace
}  // namespace ternion::bench

BENCHMARK_MAIN();

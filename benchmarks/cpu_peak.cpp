// cpu_peak: this machine's ceilings, against which docs/performance.md states the figures
// of cpu_ops_bench. The first argument of every benchmark is the OpenMP thread count.
//   BM_peak_fma      f32 FLOP/s: per thread, kAcc independent vector chains acc = acc * a + b
//                    (2 flops per lane each), enough chains to cover FMA latency x FMA pipes
//                    (8 on current x86) while staying within 16 vector registers.
//   BM_stream_copy   a[i] = b[i]             GB/s counts 2 * 4 bytes per element
//   BM_stream_triad  a[i] = b[i] + s * c[i]  GB/s counts 3 * 4 bytes per element
//                    (STREAM's counting: write-allocate traffic is not included).
// The arrays are kStreamMiB each, far beyond any last-level cache; triad also runs on a
// prefix of kCachedMiB per array, a cache-resident reference for kernels whose working set
// stays in cache between iterations.
// Built with -O3 -march=native (see CMakeLists.txt). The vector width follows the compiler's
// target through GCC vector extensions, so the file builds on any target, AVX2 or not.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <memory>
#include <string>

namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
using VecF = float __attribute__((vector_size(kVecBytes)));
constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(float));
constexpr int kAcc = 12;
constexpr int64_t kFmaIters = int64_t{1} << 20;  // per thread and benchmark iteration

constexpr int64_t kStreamMiB = 256;
constexpr int64_t kCachedMiB = 2;

int set_threads(const benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  return threads;
}

// Runs `iters` rounds of kAcc independent vector FMAs and returns a value that depends on
// all of them. a < 1 keeps every chain bounded (fixed point b / (1 - a)), away from denormals.
float fma_chains(int64_t iters, float seed) {
  VecF acc[kAcc];
  for (int j = 0; j < kAcc; ++j) acc[j] = VecF{} + (seed + static_cast<float>(j));
  const VecF a = VecF{} + 0.999f, b = VecF{} + 0.001f;
  for (int64_t it = 0; it < iters; ++it) {
    for (int j = 0; j < kAcc; ++j) acc[j] = acc[j] * a + b;
  }
  VecF sum = VecF{};
  for (int j = 0; j < kAcc; ++j) sum += acc[j];
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += sum[l];
  return total;
}

void BM_peak_fma(benchmark::State& state) {
  set_threads(state);
  int team = 1;
  for (auto _ : state) {
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
#pragma omp single
      team = omp_get_num_threads();
      sink += fma_chains(kFmaIters, static_cast<float>(omp_get_thread_num()));
    }
    benchmark::DoNotOptimize(sink);
  }
  const double flops = 2.0 * kLanes * kAcc * static_cast<double>(kFmaIters) * team;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads_used"] = team;
}

// Three arrays of kStreamMiB, allocated once and first touched with the loops' schedule.
struct StreamArrays {
  int64_t n = kStreamMiB * (int64_t{1} << 20) / static_cast<int64_t>(sizeof(float));
  std::unique_ptr<float[]> a{new float[static_cast<size_t>(n)]};
  std::unique_ptr<float[]> b{new float[static_cast<size_t>(n)]};
  std::unique_ptr<float[]> c{new float[static_cast<size_t>(n)]};
  StreamArrays() {
    float *pa = a.get(), *pb = b.get(), *pc = c.get();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      pa[i] = 0.0f;
      pb[i] = 1.0f;
      pc[i] = 2.0f;
    }
  }
};

StreamArrays& stream_arrays() {
  static StreamArrays arrays;
  return arrays;
}

void set_bandwidth(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_stream_copy(benchmark::State& state) {
  set_threads(state);
  StreamArrays& s = stream_arrays();
  float* __restrict a = s.a.get();
  const float* __restrict b = s.b.get();
  const int64_t n = s.n;
  for (auto _ : state) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i];
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 2.0 * sizeof(float) * static_cast<double>(n));
}

// range(1): MiB per array (a prefix of the shared arrays).
void BM_stream_triad(benchmark::State& state) {
  set_threads(state);
  StreamArrays& s = stream_arrays();
  float* __restrict a = s.a.get();
  const float* __restrict b = s.b.get();
  const float* __restrict c = s.c.get();
  const int64_t n = state.range(1) * (int64_t{1} << 20) / static_cast<int64_t>(sizeof(float));
  const float scalar = 3.0f;
  for (auto _ : state) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 3.0 * sizeof(float) * static_cast<double>(n));
}

BENCHMARK(BM_peak_fma)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_stream_copy)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_stream_triad)
    ->ArgNames({"threads", "MiB"})
    ->Args({1, kStreamMiB})
    ->Args({2, kStreamMiB})
    ->Args({1, kCachedMiB})
    ->Args({2, kCachedMiB})
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("peak_vector_bytes", std::to_string(kVecBytes));
  benchmark::AddCustomContext("peak_accumulators", std::to_string(kAcc));
  benchmark::AddCustomContext("stream_mib_per_array", std::to_string(kStreamMiB));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

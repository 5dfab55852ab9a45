// cuda_kernels_bench: every hot CUDA kernel at GPT-2 124M training shapes, against the
// device's own ceilings measured in the same run (the roofline): device-to-device copy
// bandwidth for the memory-bound kernels, cuBLAS(Lt) GEMM throughput for the matmuls and
// attention. Prints one row per kernel: time, achieved GB/s or TFLOP/s, and the fraction of
// its ceiling. CUDA builds only; exits with a message when no GPU is visible.
//
// Usage: cuda_kernels_bench [--dtype bf16|f16|f32] [--batch B] [--reps N]
// Shapes: B×T = batch×1024 rows, C = 768, 4C = 3072, V = 50304, H = 12, D = 64.
// Byte counts are the minimum traffic (each input read once, each output written once);
// attention FLOPs count the causal half: forward 2·2·B·H·T²·D/2, backward 2.5× that.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "core/device.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace {

using namespace ternion;

struct Options {
  DType dtype = DType::bf16;
  int64_t batch = 8;
  int reps = 20;
};

// Mean of `reps` launches after 3 warm-ups, timed with CUDA events on the default stream.
double time_ms(int reps, const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) fn();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

Tensor dev(const Shape& s, DType dt, double fill = 0.01) { return Tensor::full(s, fill, dt, Device::cuda()); }

void row(const char* name, double ms, double amount, bool flops, double ceiling) {
  const double rate = amount / (ms * 1e-3) / (flops ? 1e12 : 1e9);
  std::printf("%-28s %9.3f ms %9.1f %-7s %6.1f%% of %s ceiling\n", name, ms, rate, flops ? "TFLOP/s" : "GB/s",
              100 * rate / ceiling, flops ? "gemm" : "copy");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--dtype") o.dtype = v == "f32" ? DType::f32 : v == "f16" ? DType::f16 : DType::bf16;
    else if (k == "--batch") o.batch = std::atoll(v.c_str());
    else if (k == "--reps") o.reps = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "usage: cuda_kernels_bench [--dtype bf16|f16|f32] [--batch B] [--reps N]\n");
      return 2;
    }
  }
  if (!cuda_available()) {
    std::printf("cuda_kernels_bench: no GPU visible; nothing to measure\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const DType dt = o.dtype;
  const double es = static_cast<double>(dtype_size(dt));
  const int64_t T = 1024, N = o.batch * T, C = 768, V = 50304, H = 12, D = 64;
  std::printf("device: %s; dtype %s; rows N = %lld (batch %lld x T %lld)\n", prop.name, std::string(dtype_name(dt)).c_str(),
              static_cast<long long>(N), static_cast<long long>(o.batch), static_cast<long long>(T));

  // Ceilings: a large device-to-device copy (read + write) and a square GEMM.
  Tensor big_a = Tensor::empty({256 << 20}, DType::u16, Device::cuda()), big_b = Tensor::empty({256 << 20}, DType::u16, Device::cuda());
  const double copy_ms = time_ms(o.reps, [&] { big_b.copy_(big_a); });
  const double copy_gbs = 2.0 * big_a.nbytes() / (copy_ms * 1e-3) / 1e9;
  const int64_t G = 8192;
  Tensor ga = dev({1, G, G}, dt), gb = dev({1, G, G}, dt), gc = dev({1, G, G}, dt);
  const double gemm_ms = time_ms(o.reps, [&] { kernels::cuda::gemm(ga, false, gb, true, gc, 1.0, 0.0); });
  const double gemm_tf = 2.0 * G * G * G / (gemm_ms * 1e-3) / 1e12;
  std::printf("ceilings: copy %.0f GB/s, gemm %lldx%lld %.1f TFLOP/s\n\n", copy_gbs, static_cast<long long>(G),
              static_cast<long long>(G), gemm_tf);

  // Matmuls of one block (forward shapes; backward has the same FLOPs twice).
  Tensor x = dev({1, N, C}, dt), w_qkv = dev({1, 3 * C, C}, dt), qkv = dev({1, N, 3 * C}, dt);
  row("gemm c_attn [N,C]x[C,3C]", time_ms(o.reps, [&] { kernels::cuda::gemm(x, false, w_qkv, true, qkv, 1, 0); }),
      2.0 * N * C * 3 * C, true, gemm_tf);
  Tensor w_fc = dev({1, 4 * C, C}, dt), h = dev({1, N, 4 * C}, dt);
  row("gemm c_fc [N,C]x[C,4C]", time_ms(o.reps, [&] { kernels::cuda::gemm(x, false, w_fc, true, h, 1, 0); }),
      2.0 * N * C * 4 * C, true, gemm_tf);
  Tensor w_lm = dev({1, V, C}, dt), logits = dev({1, N, V}, dt);
  row("gemm lm_head [N,C]x[C,V]", time_ms(o.reps, [&] { kernels::cuda::gemm(x, false, w_lm, true, logits, 1, 0); }),
      2.0 * N * C * V, true, gemm_tf);

  // Attention, causal.
  const Shape qs = {o.batch, H, T, D};
  Tensor q = dev(qs, dt), k = dev(qs, dt), v = dev(qs, dt), out = dev(qs, dt), lse = dev({o.batch, H, T}, DType::f32);
  Tensor dq = dev(qs, dt), dk = dev(qs, dt), dv = dev(qs, dt);
  const double att_flops = 2.0 * 2.0 * o.batch * H * T * T * D / 2;
  row("attention forward", time_ms(o.reps, [&] { kernels::cuda::attention_forward(q, k, v, out, lse); }), att_flops,
      true, gemm_tf);
  row("attention backward",
      time_ms(o.reps, [&] { kernels::cuda::attention_backward(q, k, v, out, lse, out, dq, dk, dv); }),
      2.5 * att_flops, true, gemm_tf);

  // Memory-bound kernels.
  Tensor w = dev({C}, dt, 1.0), b = dev({C}, dt), y = dev({N, C}, dt), mean = dev({N}, DType::f32),
         rstd = dev({N}, DType::f32), dx = dev({N, C}, dt), dw = dev({C}, dt), db = dev({C}, dt);
  Tensor x2 = x.view({N, C});
  row("layernorm forward", time_ms(o.reps, [&] { kernels::cuda::layernorm_forward(x2, w, b, 1e-5, y, mean, rstd); }),
      2.0 * N * C * es, false, copy_gbs);
  row("layernorm backward",
      time_ms(o.reps, [&] { kernels::cuda::layernorm_backward(x2, w, mean, rstd, y, dx, dw, db); }), 3.0 * N * C * es,
      false, copy_gbs);
  Tensor h2 = h.view({N, 4 * C}), g2 = dev({N, 4 * C}, dt);
  row("gelu forward", time_ms(o.reps, [&] { kernels::cuda::gelu_forward(h2, g2); }), 2.0 * N * 4 * C * es, false,
      copy_gbs);
  row("gelu backward", time_ms(o.reps, [&] { kernels::cuda::gelu_backward(h2, g2, g2); }), 3.0 * N * 4 * C * es,
      false, copy_gbs);
  row("add (residual)", time_ms(o.reps, [&] { kernels::cuda::add(x2, y, dx); }), 3.0 * N * C * es, false, copy_gbs);
  Tensor l2 = logits.view({N, V}), targets = Tensor::zeros({N}, DType::i32, Device::cuda()),
         ce_lse = dev({N}, DType::f32), loss = dev({}, DType::f32);
  row("cross-entropy forward",
      time_ms(o.reps, [&] { kernels::cuda::cross_entropy_forward(l2, targets, ce_lse, loss); }), 1.0 * N * V * es,
      false, copy_gbs);
  row("cross-entropy backward",
      time_ms(o.reps, [&] { kernels::cuda::cross_entropy_backward(l2, targets, ce_lse, 1.0, l2); }),
      2.0 * N * V * es, false, copy_gbs);
  const int64_t P = 124'000'000;
  Tensor p = dev({P}, DType::f32), g = dev({P}, DType::f32), m = dev({P}, DType::f32), vv = dev({P}, DType::f32);
  row("adamw (124M f32)",
      time_ms(o.reps, [&] { kernels::cuda::adamw(p, g, m, vv, 1e-4, 0.9, 0.95, 1e-8, 0.1, 1); }), 7.0 * P * 4, false,
      copy_gbs);
  Tensor ss = dev({}, DType::f64);
  row("sum_squares (124M f32)", time_ms(o.reps, [&] { kernels::cuda::sum_squares(g, ss); }), 1.0 * P * 4, false,
      copy_gbs);
  return 0;
}

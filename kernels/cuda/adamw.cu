// AdamW update and squared-norm reduction for the optimizer step (kernels/cpu/adamw.cpp).
//
// adamw (in place, per element, f32 arithmetic, bias corrections in f64 on the host),
// torch.optim.AdamW semantics:
//   p  = p * (1 - lr*wd)
//   m  = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//   p  = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc1 = 1-b1^t, bc2 = 1-b2^t
// p, g, m, v: f32 (the optimizer keeps f32 master weights and state). adamw_multi_tensor
// (adamw.h) runs the same update over many parameters in one launch.
// sum_squares: out (f64 scalar) = sum a^2 over f32, bf16 or f16 a, f64 accumulation, in a fixed
// order that depends only on numel (reduce.cuh).
#include <cmath>

#include "kernels/cuda/adamw.h"
#include "kernels/cuda/reduce.cuh"

namespace ternion::kernels::cuda {

namespace {

struct AdamwScalars {
  float step_size, bc2_sqrt, decay, b1, b2, ob1, ob2, eps;
};

AdamwScalars scalars(double lr, double b1, double b2, double eps, double wd, int64_t step) {
  TN_CHECK(step >= 1, "adamw", "step must be >= 1, got ", step);
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  return {static_cast<float>(lr / bc1),      static_cast<float>(std::sqrt(bc2)),
          static_cast<float>(1.0 - lr * wd), static_cast<float>(b1),
          static_cast<float>(b2),            static_cast<float>(1.0 - b1),
          static_cast<float>(1.0 - b2),      static_cast<float>(eps)};
}

__device__ __forceinline__ void adamw_element(float* p, const float* g, float* m, float* v,
                                              int64_t i, const AdamwScalars& s) {
  const float gi = g[i];
  const float mi = s.b1 * m[i] + s.ob1 * gi;
  const float vi = s.b2 * v[i] + s.ob2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * s.decay - s.step_size * mi / (sqrtf(vi) / s.bc2_sqrt + s.eps);
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                             AdamwScalars s) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    adamw_element(p, g, m, v, i, s);
}

// One launch per chunk of up to kMaxTensors parameters: blockIdx.y picks the tensor.
constexpr int kMaxTensors = 64;
struct TensorChunk {
  float* p[kMaxTensors];
  const float* g[kMaxTensors];
  float* m[kMaxTensors];
  float* v[kMaxTensors];
  int64_t n[kMaxTensors];
};

__global__ void adamw_multi_kernel(TensorChunk c, AdamwScalars s) {
  const int t = blockIdx.y;
  const int64_t n = c.n[t];
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    adamw_element(c.p[t], c.g[t], c.m[t], c.v[t], i, s);
}

void check_group(const char* op, const Tensor& p, const Tensor& g, const Tensor& m,
                 const Tensor& v) {
  TN_CHECK(p.shape() == g.shape() && p.shape() == m.shape() && p.shape() == v.shape(), op,
           "shapes differ: p ", p.str(), " g ", g.str(), " m ", m.str(), " v ", v.str());
}

}  // namespace

void adamw(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1,
           double beta2, double eps, double weight_decay, int64_t step) {
  const AdamwScalars s = scalars(lr, beta1, beta2, eps, weight_decay, step);
  check_group("adamw", p, g, m, v);
  const int64_t n = p.numel();
  if (n == 0) return;
  constexpr const char* op = "adamw";
  adamw_kernel<<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(p)>>>(
      detail::ptr<float>(op, "p", p), detail::ptr<float>(op, "g", g),
      detail::ptr<float>(op, "m", m), detail::ptr<float>(op, "v", v), n, s);
  TN_CUDA_CHECK_LAUNCH(op);
}

void adamw_multi_tensor(std::span<Tensor> p, std::span<const Tensor> g, std::span<Tensor> m,
                        std::span<Tensor> v, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int64_t step) {
  constexpr const char* op = "adamw_multi_tensor";
  TN_CHECK(g.size() == p.size() && m.size() == p.size() && v.size() == p.size(), op,
           "list lengths differ: p ", p.size(), " g ", g.size(), " m ", m.size(), " v ",
           v.size());
  const AdamwScalars s = scalars(lr, beta1, beta2, eps, weight_decay, step);
  size_t i = 0;
  while (i < p.size()) {
    TensorChunk c{};
    int count = 0;
    int64_t largest = 0;
    for (; i < p.size() && count < kMaxTensors; ++i) {
      check_group(op, p[i], g[i], m[i], v[i]);
      if (p[i].numel() == 0) continue;
      TN_CHECK(p[i].device() == p[0].device(), op, "parameters on different devices: ",
               p[0].device().str(), " and ", p[i].device().str());
      c.p[count] = detail::ptr<float>(op, "p", p[i]);
      c.g[count] = detail::ptr<float>(op, "g", g[i]);
      c.m[count] = detail::ptr<float>(op, "m", m[i]);
      c.v[count] = detail::ptr<float>(op, "v", v[i]);
      c.n[count] = p[i].numel();
      largest = std::max(largest, c.n[count]);
      ++count;
    }
    if (count == 0) continue;
    const dim3 grid(std::min(detail::grid_for(largest), 1024u), static_cast<unsigned>(count));
    adamw_multi_kernel<<<grid, detail::kThreads, 0, detail::stream_of(p[0])>>>(c, s);
    TN_CUDA_CHECK_LAUNCH(op);
  }
}

void sum_squares(const Tensor& a, Tensor& out) {
  TN_CHECK(out.dtype() == DType::f64 && out.numel() == 1, "sum_squares",
           "output must be an f64 scalar, got ", out.str());
  detail::dispatch_compute("sum_squares", a, [&](auto tag) {
    using T = decltype(tag);
    detail::reduce_to_scalar<T, true>("sum_squares", detail::ptr<T>("sum_squares", "a", a),
                                      a.numel(), out);
  });
}

}  // namespace ternion::kernels::cuda

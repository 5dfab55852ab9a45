// Causal scaled dot-product attention, per (batch, head), row-major [B,H,T,D]
// (kernels/cpu/attention.cpp):
//   forward:  S = q k^T * scale, scale = 1/sqrt(D); P[i,j] = softmax_j<=i(S[i,:]), P[i,j>i] = 0
//             exactly; out = P v.                     (out [B,H,T,D], probs [B,H,T,T] overwritten)
//   backward: dv = P^T dO; dP = dO v^T; dS = P * (dP - rowsum(dP * P));
//             dq = dS k * scale; dk = dS^T q * scale.  (dq, dk, dv overwritten)
// Forward: a flash-style tiled kernel of our own. A block of 8 warps takes 8 query rows of
// one (b,h); key/value tiles of 32 rows go through shared memory; each warp keeps its row's
// running max m, running sum l and output accumulator (lane owns dims lane + 32 k) and
// rescales them as each tile arrives (online softmax), so out needs one pass over k and v.
// Because the contract saves probs, a second pass over the key tiles writes
// P[i,j] = exp(S[i,j] - (m + log l)). REQUIRES D <= 128 (kMaxD).
// Backward: four cuBLAS GEMMs (gemm.cu) around a row kernel for dS, with one [B*H,T,T]
// scratch for dP/dS in the tensors' dtype.
// dtypes: f32 and bf16; scores, softmax and accumulators in f32.
#include <cmath>
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

constexpr int kWarps = 8, kTile = 32, kMaxD = 128, kPerLane = kMaxD / 32;

template <typename T>
__device__ void load_tile(const T* src, int64_t j0, int64_t Tn, int D, float (*dst)[kMaxD + 1]) {
  for (int e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    dst[r][d] = j0 + r < Tn ? to_f(src[(j0 + r) * D + d]) : 0.f;
  }
}

// grid (ceil(T / kWarps), B*H), block 32 * kWarps.
template <typename T>
__global__ void attention_forward_kernel(const T* q, const T* k, const T* v, T* out, T* probs,
                                         int64_t Tn, int D, float scale) {
  __shared__ float sk[kTile][kMaxD + 1];
  __shared__ float sv[kTile][kMaxD + 1];
  __shared__ float sq[kWarps][kMaxD];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, off = bh * Tn * D;
  const int64_t i0 = blockIdx.x * int64_t{kWarps}, i = i0 + warp;
  const bool active = i < Tn;
  const int64_t last = min(Tn - 1, i0 + kWarps - 1);  // last query row of the block
  for (int d = lane; d < D; d += 32) sq[warp][d] = active ? to_f(q[off + i * D + d]) : 0.f;

  float m = -INFINITY, l = 0.f, acc[kPerLane] = {};
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();  // previous tile fully read
    load_tile(k + off, j0, Tn, D, sk);
    load_tile(v + off, j0, Tn, D, sv);
    __syncthreads();
    if (!active || j0 > i) continue;
    const int64_t j = j0 + lane;
    float s = -INFINITY;
    if (j <= i) {
      s = 0.f;
      for (int d = 0; d < D; ++d) s += sq[warp][d] * sk[lane][d];
      s *= scale;
    }
    const float m_new = fmaxf(m, detail::warp_max(s));  // finite: key j0 <= i is in the tile
    const float p = j <= i ? expf(s - m_new) : 0.f;
    const float corr = expf(m - m_new);
    l = l * corr + detail::warp_sum(p);
    m = m_new;
    for (int t = 0; t < kPerLane; ++t) acc[t] *= corr;
    const int len = static_cast<int>(min(int64_t{kTile}, i - j0 + 1));
    for (int r = 0; r < len; ++r) {
      const float pr = __shfl_sync(0xffffffffu, p, r);
      for (int t = 0; t < kPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < D) acc[t] += pr * sv[r][d];
      }
    }
  }
  if (active) {
    for (int t = 0; t < kPerLane; ++t) {
      const int d = lane + 32 * t;
      if (d < D) out[off + i * D + d] = from_f<T>(acc[t] / l);
    }
  }

  // Second pass: probs from the final statistics; zeros above the diagonal.
  const float lse = m + logf(l);
  T* prow = probs + (bh * Tn + (active ? i : 0)) * Tn;
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    load_tile(k + off, j0, Tn, D, sk);
    __syncthreads();
    if (!active || j0 > i) continue;
    const int64_t j = j0 + lane;
    if (j <= i) {
      float s = 0.f;
      for (int d = 0; d < D; ++d) s += sq[warp][d] * sk[lane][d];
      prow[j] = from_f<T>(expf(s * scale - lse));
    }
  }
  if (active)
    for (int64_t j = i + 1 + lane; j < Tn; j += 32) prow[j] = from_f<T>(0.f);
}

// dS = P * (dP - rowsum(dP * P)) in place over ds [rows, Tn]; one warp per row.
template <typename T>
__global__ void attention_ds_kernel(const T* probs, T* ds, int64_t rows, int64_t Tn) {
  const int64_t r = blockIdx.x * int64_t{kWarps} + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const T* pr = probs + r * Tn;
  T* sr = ds + r * Tn;
  float dot = 0.f;
  for (int64_t j = lane; j < Tn; j += 32) dot += to_f(sr[j]) * to_f(pr[j]);
  dot = detail::warp_sum(dot);
  for (int64_t j = lane; j < Tn; j += 32) sr[j] = from_f<T>(to_f(pr[j]) * (to_f(sr[j]) - dot));
}

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& probs) {
  TN_CHECK(q.ndim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), op,
           "q, k, v must share one [B,H,T,D] shape, got ", q.str(), ", ", k.str(), ", ", v.str());
  const Shape ps = {q.size(0), q.size(1), q.size(2), q.size(2)};
  TN_CHECK(probs.shape() == ps, op, "probs must be [B,H,T,T] = ", shape_str(ps), ", got ",
           probs.str());
  TN_CHECK(q.size(0) * q.size(1) <= 65535, op, "B*H = ", q.size(0) * q.size(1),
           " exceeds the grid limit 65535");
}

float scale_of(int64_t D) {
  return D > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))) : 1.f;
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                       Tensor& probs) {
  constexpr const char* op = "attention_forward";
  check_qkv(op, q, k, v, probs);
  detail::check_numel(op, "out", out, q.numel());
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  TN_CHECK(D >= 1 && D <= kMaxD, op, "head size D = ", D, " outside the kernel's [1, ", kMaxD,
           "], got ", q.str());
  if (BH == 0 || Tn == 0) return;
  detail::dispatch_float(op, q, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>((Tn + kWarps - 1) / kWarps), static_cast<unsigned>(BH));
    attention_forward_kernel<T><<<grid, 32 * kWarps, 0, detail::stream_of(q)>>>(
        detail::ptr<T>(op, "q", q), detail::ptr<T>(op, "k", k), detail::ptr<T>(op, "v", v),
        detail::ptr<T>(op, "out", out), detail::ptr<T>(op, "probs", probs), Tn,
        static_cast<int>(D), scale_of(D));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "attention_backward";
  check_qkv(op, q, k, v, probs);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&dout, &dq, &dk, &dv}) detail::check_numel(op, "gradient", *t, q.numel());
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  if (BH == 0 || Tn == 0 || D == 0) return;
  const Shape s3 = {BH, Tn, D}, p3 = {BH, Tn, Tn};
  const Tensor q3 = q.view(s3), k3 = k.view(s3), v3 = v.view(s3), do3 = dout.view(s3),
               P = probs.view(p3);
  Tensor dq3 = dq.view(s3), dk3 = dk.view(s3), dv3 = dv.view(s3);
  Tensor ds = detail::scratch(p3, q.dtype(), q);
  const double scale = scale_of(D);
  gemm(P, true, do3, false, dv3, 1.0, 0.0);   // dv = P^T dO
  gemm(do3, false, v3, true, ds, 1.0, 0.0);   // dP = dO v^T
  detail::dispatch_float(op, q, [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = BH * Tn;
    attention_ds_kernel<T><<<static_cast<unsigned>((rows + kWarps - 1) / kWarps), 32 * kWarps, 0,
                             detail::stream_of(q)>>>(detail::ptr<T>(op, "probs", probs),
                                                     detail::ptr<T>(op, "ds", ds), rows, Tn);
    TN_CUDA_CHECK_LAUNCH(op);
  });
  gemm(ds, false, k3, false, dq3, scale, 0.0);  // dq = dS k * scale
  gemm(ds, true, q3, false, dk3, scale, 0.0);   // dk = dS^T q * scale
}

}  // namespace ternion::kernels::cuda

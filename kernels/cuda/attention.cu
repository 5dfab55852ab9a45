// Causal scaled dot-product attention, per (batch, head), row-major [B,H,T,D]
// (kernels/cpu/attention.cpp), flash-attention contract: no [T,T] matrix is stored.
//   forward:  S = q k^T * scale, scale = 1/sqrt(D), causal (S[i,j>i] = -inf);
//             lse[i] = log sum_j<=i exp(S[i,j]); P = exp(S - lse); out = P v.
//                                                  (out [B,H,T,D], lse [B,H,T] f32 overwritten)
//   backward: P recomputed as exp(S - lse) tile by tile; D[i] = rowsum(dO * out)[i]
//             (= rowsum(dP * P)); dP = dO v^T; dS = P * (dP - D);
//             dv = P^T dO; dq = dS k * scale; dk = dS^T q * scale.  (dq, dk, dv overwritten)
// Forward: a block of 8 warps takes 8 query rows of one (b,h); key/value tiles of 32 rows go
// through shared memory; each warp keeps its row's running max m, running sum l and output
// accumulator (lane owns dims lane + 32 k) and rescales them as each tile arrives (online
// softmax), so out needs one pass over k and v; lse = m + log l.
// Backward, three kernels:
//   1. D[i] = rowsum(dO * out), one warp per row, into an f32 [B*H,T] scratch.
//   2. dk, dv: one block per (b,h, tile of 32 keys), k and v of the tile in shared memory.
//      It walks the query rows i >= the tile's first key, 8 at a time (one per warp): each
//      lane (one key) forms p and ds for its warp's row, then the block adds
//      p^T dO and ds^T q into dk, dv accumulators that each thread holds in registers for a
//      fixed set of (key, dim) elements.
//   3. dq: laid out as the forward (warp per query row, walking key tiles), recomputing p and
//      ds. A separate pass costs two extra dot products per (i,j) but needs no atomics, so
//      dq is deterministic and written straight in the tensors' dtype.
// REQUIRES D <= 128 (kMaxD). dtypes: q, k, v, out, dout, dq, dk, dv f32 or bf16, all alike;
// lse f32; scores, softmax and accumulators in f32.
#include <cmath>
#include <initializer_list>

#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

constexpr int kWarps = 8, kTile = 32, kMaxD = 128, kPerLane = kMaxD / 32;
constexpr int kThreads = 32 * kWarps;
constexpr int kOwn = kTile * kMaxD / kThreads;  // (key, dim) accumulators per thread in dk/dv

template <typename T>
__device__ void load_tile(const T* src, int64_t j0, int64_t Tn, int D, float (*dst)[kMaxD + 1]) {
  for (int e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    dst[r][d] = j0 + r < Tn ? to_f(src[(j0 + r) * D + d]) : 0.f;
  }
}

// grid (ceil(T / kWarps), B*H), block kThreads.
template <typename T>
__global__ void attention_forward_kernel(const T* q, const T* k, const T* v, T* out, float* lse,
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
    if (lane == 0) lse[bh * Tn + i] = m + logf(l);
  }
}

// delta[r] = sum_d dout[r,d] * out[r,d] over rows r < rows; one warp per row.
template <typename T>
__global__ void attention_delta_kernel(const T* out, const T* dout, float* delta, int64_t rows,
                                       int D) {
  const int64_t r = blockIdx.x * int64_t{kWarps} + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  float dot = 0.f;
  for (int d = lane; d < D; d += 32) dot += to_f(dout[r * D + d]) * to_f(out[r * D + d]);
  dot = detail::warp_sum(dot);
  if (lane == 0) delta[r] = dot;
}

// grid (ceil(T / kTile), B*H), block kThreads: dk, dv of keys [j0, j0 + kTile).
template <typename T>
__global__ void attention_dkdv_kernel(const T* q, const T* k, const T* v, const T* dout,
                                      const float* lse, const float* delta, T* dk, T* dv,
                                      int64_t Tn, int D, float scale) {
  __shared__ float sk[kTile][kMaxD + 1];
  __shared__ float sv[kTile][kMaxD + 1];
  __shared__ float sq[kWarps][kMaxD];
  __shared__ float sdo[kWarps][kMaxD];
  __shared__ float sp[kWarps][kTile];
  __shared__ float sds[kWarps][kTile];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, off = bh * Tn * D;
  const int64_t j0 = blockIdx.x * int64_t{kTile}, j = j0 + lane;  // this lane's key
  load_tile(k + off, j0, Tn, D, sk);
  load_tile(v + off, j0, Tn, D, sv);
  // Thread owns the (key, dim) elements e = threadIdx.x + kThreads * r, key = e / D.
  float adk[kOwn] = {}, adv[kOwn] = {};
  for (int64_t i0 = j0; i0 < Tn; i0 += kWarps) {  // rows before j0 see none of these keys
    const int64_t i = i0 + warp;
    const bool active = i < Tn;
    __syncthreads();  // the tiles are loaded; the previous rows' sq, sdo, sp, sds are read
    for (int d = lane; d < D; d += 32) {
      sq[warp][d] = active ? to_f(q[off + i * D + d]) : 0.f;
      sdo[warp][d] = active ? to_f(dout[off + i * D + d]) : 0.f;
    }
    __syncwarp();
    float p = 0.f, ds = 0.f;
    if (active && j <= i) {
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < D; ++d) {
        s += sq[warp][d] * sk[lane][d];
        dp += sdo[warp][d] * sv[lane][d];
      }
      p = expf(s * scale - lse[bh * Tn + i]);
      ds = p * (dp - delta[bh * Tn + i]);
    }
    sp[warp][lane] = p;
    sds[warp][lane] = ds;
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kOwn; ++r) {
      const int e = threadIdx.x + kThreads * r;
      if (e < kTile * D) {
        const int key = e / D, d = e % D;
        for (int w = 0; w < kWarps; ++w) {
          adv[r] += sp[w][key] * sdo[w][d];
          adk[r] += sds[w][key] * sq[w][d];
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kOwn; ++r) {
    const int e = threadIdx.x + kThreads * r;
    if (e < kTile * D && j0 + e / D < Tn) {
      const int64_t at = off + j0 * D + e;
      dk[at] = from_f<T>(adk[r] * scale);
      dv[at] = from_f<T>(adv[r]);
    }
  }
}

// grid (ceil(T / kWarps), B*H), block kThreads: dq of 8 query rows, as the forward walks keys.
template <typename T>
__global__ void attention_dq_kernel(const T* q, const T* k, const T* v, const T* dout,
                                    const float* lse, const float* delta, T* dq, int64_t Tn,
                                    int D, float scale) {
  __shared__ float sk[kTile][kMaxD + 1];
  __shared__ float sv[kTile][kMaxD + 1];
  __shared__ float sq[kWarps][kMaxD];
  __shared__ float sdo[kWarps][kMaxD];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, off = bh * Tn * D;
  const int64_t i0 = blockIdx.x * int64_t{kWarps}, i = i0 + warp;
  const bool active = i < Tn;
  const int64_t last = min(Tn - 1, i0 + kWarps - 1);
  for (int d = lane; d < D; d += 32) {
    sq[warp][d] = active ? to_f(q[off + i * D + d]) : 0.f;
    sdo[warp][d] = active ? to_f(dout[off + i * D + d]) : 0.f;
  }
  const float li = active ? lse[bh * Tn + i] : 0.f, di = active ? delta[bh * Tn + i] : 0.f;

  float acc[kPerLane] = {};
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    load_tile(k + off, j0, Tn, D, sk);
    load_tile(v + off, j0, Tn, D, sv);
    __syncthreads();
    if (!active || j0 > i) continue;
    const int64_t j = j0 + lane;
    float ds = 0.f;
    if (j <= i) {
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < D; ++d) {
        s += sq[warp][d] * sk[lane][d];
        dp += sdo[warp][d] * sv[lane][d];
      }
      ds = expf(s * scale - li) * (dp - di);
    }
    const int len = static_cast<int>(min(int64_t{kTile}, i - j0 + 1));
    for (int r = 0; r < len; ++r) {
      const float dr = __shfl_sync(0xffffffffu, ds, r);
      for (int t = 0; t < kPerLane; ++t) {
        const int d = lane + 32 * t;
        if (d < D) acc[t] += dr * sk[r][d];
      }
    }
  }
  if (active) {
    for (int t = 0; t < kPerLane; ++t) {
      const int d = lane + 32 * t;
      if (d < D) dq[off + i * D + d] = from_f<T>(acc[t] * scale);
    }
  }
}

void check_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                  const Tensor& out, const Tensor& lse) {
  check_attention(op, q, k, v, out, lse);
  TN_CHECK(q.size(0) * q.size(1) <= 65535, op, "B*H = ", q.size(0) * q.size(1),
           " exceeds the grid limit 65535");
  TN_CHECK(q.size(3) >= 1 && q.size(3) <= kMaxD, op, "head size D = ", q.size(3),
           " outside the kernel's [1, ", kMaxD, "], got ", q.str());
}

float scale_of(int64_t D) {
  return D > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))) : 1.f;
}

unsigned blocks_of(int64_t n, int64_t per) { return static_cast<unsigned>((n + per - 1) / per); }

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                       Tensor& lse) {
  constexpr const char* op = "attention_forward";
  check_shapes(op, q, k, v, out, lse);
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  if (BH == 0 || Tn == 0) return;
  detail::dispatch_compute(op, q, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(blocks_of(Tn, kWarps), static_cast<unsigned>(BH));
    attention_forward_kernel<T><<<grid, kThreads, 0, detail::stream_of(q)>>>(
        detail::ptr<T>(op, "q", q), detail::ptr<T>(op, "k", k), detail::ptr<T>(op, "v", v),
        detail::ptr<T>(op, "out", out), detail::ptr<float>(op, "lse", lse), Tn,
        static_cast<int>(D), scale_of(D));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                        Tensor& dv) {
  constexpr const char* op = "attention_backward";
  check_shapes(op, q, k, v, out, lse);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&dout, &dq, &dk, &dv})
    detail::check_numel(op, "gradient", *t, q.numel());
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  if (BH == 0 || Tn == 0) return;
  Tensor delta = detail::scratch({BH, Tn}, DType::f32, q);
  const float scale = scale_of(D);
  const int d = static_cast<int>(D);
  detail::dispatch_compute(op, q, [&](auto tag) {
    using T = decltype(tag);
    const cudaStream_t stream = detail::stream_of(q);
    const T* pq = detail::ptr<T>(op, "q", q);
    const T* pk = detail::ptr<T>(op, "k", k);
    const T* pv = detail::ptr<T>(op, "v", v);
    const T* pdo = detail::ptr<T>(op, "dout", dout);
    const float* pl = detail::ptr<float>(op, "lse", lse);
    float* pd = detail::ptr<float>(op, "delta", delta);
    attention_delta_kernel<T><<<blocks_of(BH * Tn, kWarps), kThreads, 0, stream>>>(
        detail::ptr<T>(op, "out", out), pdo, pd, BH * Tn, d);
    TN_CUDA_CHECK_LAUNCH(op);
    const dim3 kgrid(blocks_of(Tn, kTile), static_cast<unsigned>(BH));
    attention_dkdv_kernel<T><<<kgrid, kThreads, 0, stream>>>(
        pq, pk, pv, pdo, pl, pd, detail::ptr<T>(op, "dk", dk), detail::ptr<T>(op, "dv", dv), Tn,
        d, scale);
    TN_CUDA_CHECK_LAUNCH(op);
    const dim3 qgrid(blocks_of(Tn, kWarps), static_cast<unsigned>(BH));
    attention_dq_kernel<T><<<qgrid, kThreads, 0, stream>>>(
        pq, pk, pv, pdo, pl, pd, detail::ptr<T>(op, "dq", dq), Tn, d, scale);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

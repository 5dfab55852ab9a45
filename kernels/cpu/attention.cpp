// Causal scaled dot-product attention, per (batch, head), row-major [B,H,T,D], computed in
// blocks of kRows query rows so that no [T,T] matrix is ever held (flash-attention contract):
//   forward:  S = q k^T * scale, scale = 1/sqrt(D), causal (S[i,j>i] = -inf);
//             lse[i] = log sum_j<=i exp(S[i,j]); P = exp(S - lse); out = P v.
//                                                  (out [B,H,T,D], lse [B,H,T] overwritten)
//   backward: P recomputed as exp(S - lse) block by block; D[i] = rowsum(dO * out)[i]
//             (= rowsum(dP * P)); dP = dO v^T; dS = P * (dP - D);
//             dv = P^T dO; dq = dS k * scale; dk = dS^T q * scale.  (dq, dk, dv overwritten)
// A query block [i0, i1) only meets keys [0, i1), so the GEMMs skip most of the masked upper
// triangle. Scratch: one or two [kRows, T] buffers per thread.
// Precision: GEMMs by OpenBLAS in the tensor dtype; exp as in softmax.cpp; softmax row sums
// and D in f64; lse in the tensor dtype.
// Parallelism: OpenMP over the (b,h, query block) pairs in the forward, over B*H in the
// backward (dk, dv of one (b,h) accumulate over its query blocks in order); the BLAS calls
// inside run single-threaded. Each block is computed by one thread in a fixed order, so
// results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

constexpr int64_t kRows = 64;  // query rows per block: [64, T] scores stay in L2 at T = 1024

double scale_of(int64_t D) { return D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0; }

template <typename T>
void forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse) {
  constexpr const char* op = "attention_forward";
  const T* pq = detail::ptr<T>(op, "q", q);
  const T* pk = detail::ptr<T>(op, "k", k);
  const T* pv = detail::ptr<T>(op, "v", v);
  T* po = detail::ptr<T>(op, "out", out);
  T* pl = detail::ptr<T>(op, "lse", lse);
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  const int64_t blocks = (Tn + kRows - 1) / kRows, tasks = BH * blocks;
  const T scale = static_cast<T>(scale_of(D));
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> sbuf(static_cast<size_t>(std::min(Tn, kRows) * Tn));  // S, then P
    // Later blocks see more keys: dynamic scheduling evens out the causal triangle.
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = task / blocks, i0 = (task % blocks) * kRows;
      const int64_t i1 = std::min(Tn, i0 + kRows), n = i1 - i0, K = i1;  // keys [0, i1)
      const int64_t off = bh * Tn * D;
      T* S = sbuf.data();
      detail::blas_gemm<T>(false, true, n, K, D, scale, pq + off + i0 * D, D, pk + off, D, T(0),
                           S, K);
      for (int64_t r = 0; r < n; ++r) {
        T* row = S + r * K;
        const int64_t len = i0 + r + 1;
        T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < len; ++j) mx = std::max(mx, row[j]);
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) row[j] = detail::vexp(row[j] - mx);
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < len; ++j) sum += static_cast<double>(row[j]);
        const T inv = static_cast<T>(1.0 / sum);
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) row[j] *= inv;
        for (int64_t j = len; j < K; ++j) row[j] = T(0);
        pl[bh * Tn + i0 + r] = static_cast<T>(static_cast<double>(mx) + std::log(sum));
      }
      detail::blas_gemm<T>(false, false, n, D, K, T(1), S, K, pv + off, D, T(0),
                           po + off + i0 * D, D);
    }
  }
}

template <typename T>
void backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "attention_backward";
  const T* pq = detail::ptr<T>(op, "q", q);
  const T* pk = detail::ptr<T>(op, "k", k);
  const T* pv = detail::ptr<T>(op, "v", v);
  const T* po = detail::ptr<T>(op, "out", out);
  const T* pl = detail::ptr<T>(op, "lse", lse);
  const T* pdo = detail::ptr<T>(op, "dout", dout);
  T* pdq = detail::ptr<T>(op, "dq", dq);
  T* pdk = detail::ptr<T>(op, "dk", dk);
  T* pdv = detail::ptr<T>(op, "dv", dv);
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  const T scale = static_cast<T>(scale_of(D));
#pragma omp parallel if (BH > 1)
  {
    const size_t block = static_cast<size_t>(std::min(Tn, kRows) * Tn);
    std::vector<T> pbuf(block), sbuf(block);  // P; dP, then dS
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const int64_t off = bh * Tn * D;
      std::fill(pdk + off, pdk + off + Tn * D, T(0));
      std::fill(pdv + off, pdv + off + Tn * D, T(0));
      for (int64_t i0 = 0; i0 < Tn; i0 += kRows) {
        const int64_t i1 = std::min(Tn, i0 + kRows), n = i1 - i0, K = i1;
        const T* qb = pq + off + i0 * D;
        const T* dob = pdo + off + i0 * D;
        T* P = pbuf.data();
        T* S = sbuf.data();
        detail::blas_gemm<T>(false, true, n, K, D, scale, qb, D, pk + off, D, T(0), P, K);
        detail::blas_gemm<T>(false, true, n, K, D, T(1), dob, D, pv + off, D, T(0), S, K);
        for (int64_t r = 0; r < n; ++r) {
          const int64_t i = i0 + r, len = i + 1;
          const T* orow = po + off + i * D;
          const T* drow = dob + r * D;
          double dot = 0.0;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(drow[d]) * orow[d];
          const T di = static_cast<T>(dot), l = pl[bh * Tn + i];
          T* prow = P + r * K;
          T* srow = S + r * K;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) {
            prow[j] = detail::vexp(prow[j] - l);
            srow[j] = prow[j] * (srow[j] - di);
          }
          for (int64_t j = len; j < K; ++j) prow[j] = srow[j] = T(0);
        }
        detail::blas_gemm<T>(true, false, K, D, n, T(1), P, K, dob, D, T(1), pdv + off, D);
        detail::blas_gemm<T>(false, false, n, D, K, scale, S, K, pk + off, D, T(0),
                             pdq + off + i0 * D, D);
        detail::blas_gemm<T>(true, false, K, D, n, scale, S, K, qb, D, T(1), pdk + off, D);
      }
    }
  }
}

void check_shapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                  const Tensor& out, const Tensor& lse) {
  check_attention(op, q, k, v, out, lse);
  detail::check_blas_size(op, {q.size(2), q.size(3)});
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                       Tensor& lse) {
  check_shapes("attention_forward", q, k, v, out, lse);
  detail::dispatch_float("attention_forward", q, [&](auto tag) {
    forward_impl<decltype(tag)>(q, k, v, out, lse);
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,
                        Tensor& dv) {
  check_shapes("attention_backward", q, k, v, out, lse);
  detail::check_numel("attention_backward", "dout", dout, q.numel());
  detail::check_numel("attention_backward", "dq", dq, q.numel());
  detail::check_numel("attention_backward", "dk", dk, q.numel());
  detail::check_numel("attention_backward", "dv", dv, q.numel());
  detail::dispatch_float("attention_backward", q, [&](auto tag) {
    backward_impl<decltype(tag)>(q, k, v, out, lse, dout, dq, dk, dv);
  });
}

}  // namespace ternion::kernels::cpu

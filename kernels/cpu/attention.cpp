// Causal scaled dot-product attention, per (batch, head), row-major [B,H,T,D]:
//   forward:  S = q k^T * scale, scale = 1/sqrt(D); P[i,j] = softmax_j<=i(S[i,:]), P[i,j>i] = 0
//             exactly; out = P v.                     (out [B,H,T,D], probs [B,H,T,T] overwritten)
//   backward: dv = P^T dO; dP = dO v^T; dS = P * (dP - rowsum(dP * P));
//             dq = dS k * scale; dk = dS^T q * scale.  (dq, dk, dv overwritten)
// Precision: GEMMs by OpenBLAS in the tensor dtype; exp as in softmax.cpp; softmax row sums
// and rowsum(dP * P) in f64.
// Parallelism: OpenMP over B*H; the BLAS calls inside run single-threaded. Each (b,h) is
// computed by one thread, so results do not depend on the thread count.
#include <cmath>
#include <limits>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

double scale_of(int64_t D) { return D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0; }

// In-place causal softmax of the rows of S[T,T]: row i keeps columns 0..i.
template <typename T>
void causal_softmax(T* s, int64_t Tn) {
  for (int64_t i = 0; i < Tn; ++i) {
    T* row = s + i * Tn;
    const int64_t len = i + 1;
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
    for (int64_t j = len; j < Tn; ++j) row[j] = T(0);
  }
}

template <typename T>
void forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& probs) {
  constexpr const char* op = "attention_forward";
  const T* pq = detail::ptr<T>(op, "q", q);
  const T* pk = detail::ptr<T>(op, "k", k);
  const T* pv = detail::ptr<T>(op, "v", v);
  T* po = detail::ptr<T>(op, "out", out);
  T* pp = detail::ptr<T>(op, "probs", probs);
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  const T scale = static_cast<T>(scale_of(D));
#pragma omp parallel for schedule(static) if (BH > 1)
  for (int64_t bh = 0; bh < BH; ++bh) {
    const int64_t off = bh * Tn * D;
    T* P = pp + bh * Tn * Tn;
    detail::blas_gemm<T>(false, true, Tn, Tn, D, scale, pq + off, D, pk + off, D, T(0), P, Tn);
    causal_softmax(P, Tn);
    detail::blas_gemm<T>(false, false, Tn, D, Tn, T(1), P, Tn, pv + off, D, T(0), po + off, D);
  }
}

template <typename T>
void backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                   const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  constexpr const char* op = "attention_backward";
  const T* pq = detail::ptr<T>(op, "q", q);
  const T* pk = detail::ptr<T>(op, "k", k);
  const T* pv = detail::ptr<T>(op, "v", v);
  const T* pp = detail::ptr<T>(op, "probs", probs);
  const T* pdo = detail::ptr<T>(op, "dout", dout);
  T* pdq = detail::ptr<T>(op, "dq", dq);
  T* pdk = detail::ptr<T>(op, "dk", dk);
  T* pdv = detail::ptr<T>(op, "dv", dv);
  const int64_t BH = q.size(0) * q.size(1), Tn = q.size(2), D = q.size(3);
  const T scale = static_cast<T>(scale_of(D));
#pragma omp parallel if (BH > 1)
  {
    std::vector<T> ds(static_cast<size_t>(Tn * Tn));  // dP, then dS, of one (b,h)
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < BH; ++bh) {
      const int64_t off = bh * Tn * D;
      const T* P = pp + bh * Tn * Tn;
      T* S = ds.data();
      detail::blas_gemm<T>(true, false, Tn, D, Tn, T(1), P, Tn, pdo + off, D, T(0), pdv + off, D);
      detail::blas_gemm<T>(false, true, Tn, Tn, D, T(1), pdo + off, D, pv + off, D, T(0), S, Tn);
      for (int64_t i = 0; i < Tn; ++i) {
        const T* pr = P + i * Tn;
        T* sr = S + i * Tn;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < Tn; ++j) dot += static_cast<double>(sr[j]) * static_cast<double>(pr[j]);
        const T dt = static_cast<T>(dot);
#pragma omp simd
        for (int64_t j = 0; j < Tn; ++j) sr[j] = pr[j] * (sr[j] - dt);
      }
      detail::blas_gemm<T>(false, false, Tn, D, Tn, scale, S, Tn, pk + off, D, T(0), pdq + off, D);
      detail::blas_gemm<T>(true, false, Tn, D, Tn, scale, S, Tn, pq + off, D, T(0), pdk + off, D);
    }
  }
}

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& probs) {
  TN_CHECK(q.ndim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), op,
           "q, k, v must share one [B,H,T,D] shape, got ", q.str(), ", ", k.str(), ", ", v.str());
  const Shape ps = {q.size(0), q.size(1), q.size(2), q.size(2)};
  TN_CHECK(probs.shape() == ps, op, "probs must be [B,H,T,T] = ", shape_str(ps), ", got ",
           probs.str());
  detail::check_blas_size(op, {q.size(2), q.size(3)});
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                       Tensor& probs) {
  check_qkv("attention_forward", q, k, v, probs);
  detail::check_numel("attention_forward", "out", out, q.numel());
  detail::dispatch_float("attention_forward", q, [&](auto tag) {
    forward_impl<decltype(tag)>(q, k, v, out, probs);
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  check_qkv("attention_backward", q, k, v, probs);
  detail::check_numel("attention_backward", "dout", dout, q.numel());
  detail::check_numel("attention_backward", "dq", dq, q.numel());
  detail::check_numel("attention_backward", "dk", dk, q.numel());
  detail::check_numel("attention_backward", "dv", dv, q.numel());
  detail::dispatch_float("attention_backward", q, [&](auto tag) {
    backward_impl<decltype(tag)>(q, k, v, probs, dout, dq, dk, dv);
  });
}

}  // namespace ternion::kernels::cpu

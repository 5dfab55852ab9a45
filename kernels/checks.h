// Argument checks shared by the CPU and CUDA versions of a kernel, so that both reject the
// same misuse with the same message. Device-specific limits (BLAS int range, CUDA grid and
// head-size limits) stay in the device's file.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "core/tensor.h"

namespace ternion::kernels {

inline void check_numel(std::string_view op, std::string_view arg, const Tensor& t, int64_t n) {
  TN_CHECK(t.defined() && t.numel() == n, op, arg, " ", t.str(), " should have ", n, " elements");
}

// gemm's c[batch, M, N] = op(a) @ op(b); a or b may have batch 1 (shared).
struct GemmDims {
  int64_t batch, M, N, K;
};
inline GemmDims check_gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) {
  TN_CHECK(a.ndim() == 3 && b.ndim() == 3 && c.ndim() == 3, "gemm", "expects 3-D tensors, got a ",
           a.str(), ", b ", b.str(), ", c ", c.str());
  const int64_t batch = c.size(0);
  const int64_t M = trans_a ? a.size(2) : a.size(1), Ka = trans_a ? a.size(1) : a.size(2);
  const int64_t Kb = trans_b ? b.size(2) : b.size(1), N = trans_b ? b.size(1) : b.size(2);
  TN_CHECK((a.size(0) == batch || a.size(0) == 1) && (b.size(0) == batch || b.size(0) == 1) &&
               Ka == Kb && c.size(1) == M && c.size(2) == N,
           "gemm", "shape mismatch: a ", a.str(), trans_a ? "^T" : "", ", b ", b.str(),
           trans_b ? "^T" : "", ", c ", c.str());
  TN_CHECK(a.dtype() == c.dtype() && b.dtype() == c.dtype(), "gemm", "dtype mismatch: a ",
           a.str(), ", b ", b.str(), ", c ", c.str());
  return {batch, M, N, Ka};
}

// Causal attention: q, k, v, out [B,H,T,D]; lse [B,H,T].
inline void check_attention(std::string_view op, const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& out, const Tensor& lse) {
  TN_CHECK(q.ndim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(), op,
           "q, k, v must share one [B,H,T,D] shape, got ", q.str(), ", ", k.str(), ", ", v.str());
  const Shape ls = {q.size(0), q.size(1), q.size(2)};
  TN_CHECK(lse.shape() == ls, op, "lse must be [B,H,T] = ", shape_str(ls), ", got ", lse.str());
  check_numel(op, "out", out, q.numel());
}

// Vocabulary-parallel kernels: this rank's `count` ids start at `begin` in a vocabulary of
// `vocab` and fill the first `count` of `local` rows (a table's) or columns (logits').
inline void check_vocab_range(std::string_view op, std::string_view what, int64_t begin, int64_t count,
                              int64_t vocab) {
  TN_CHECK(begin >= 0 && begin + count <= vocab, op, what, " [", begin, ", ", begin + count,
           ") must lie in the vocabulary [0, ", vocab, ")");
}
inline void check_vocab_table(std::string_view op, const Tensor& table, int64_t begin, int64_t count, int64_t vocab) {
  TN_CHECK(table.ndim() == 2, op, "table must be [Vl,C], got ", table.str());
  TN_CHECK(count >= 0 && count <= table.size(0), op, "count ", count, " must be in [0, Vl=", table.size(0),
           "] for table ", table.str());
  check_vocab_range(op, "rows", begin, count, vocab);
}
// logits [N, Vl] (any leading dims) with N = rows; returns Vl.
inline int64_t check_vocab_logits(std::string_view op, const Tensor& logits, int64_t rows, int64_t count) {
  TN_CHECK(logits.ndim() >= 1 && logits.numel() == rows * logits.size(-1), op, "logits must be [N,Vl] with N = ",
           rows, ", got ", logits.str());
  TN_CHECK(count >= 0 && count <= logits.size(-1), op, "count ", count, " must be in [0, Vl=", logits.size(-1),
           "] for logits ", logits.str());
  return logits.size(-1);
}

}  // namespace ternion::kernels

// Helpers shared by the CPU kernels: dtype dispatch, checked pointers, index loading
// and a BLAS GEMM wrapper that tolerates empty sizes. Internal to kernels/cpu.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "kernels/checks.h"
#include "kernels/kernels.h"

namespace ternion::kernels::cpu::detail {

// Calls f(T{}) with T = float or double for the dtype of `t`; other dtypes throw naming `op`.
template <typename F>
void dispatch_float(std::string_view op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: fail(op, str_cat("expects f32 or f64, got ", t.str()));
  }
}

// Pointer to the data of `t` as T; throws naming `op` and the argument on dtype or layout misuse.
template <typename T>
T* ptr(std::string_view op, std::string_view arg, const Tensor& t) {
  TN_CHECK(t.defined(), op, arg, " is undefined");
  TN_CHECK(t.dtype() == dtype_of<T>(), op, arg, " is ", t.str(), ", expected ",
           dtype_name(dtype_of<T>()));
  TN_CHECK(t.device().is_cpu(), op, arg, " is ", t.str(), ", expected a CPU tensor");
  // Empty tensors hold no data; their layout is irrelevant (and core's is_contiguous
  // rejects some of them, e.g. [3, 0]).
  TN_CHECK(t.numel() == 0 || t.is_contiguous(), op, arg, " ", t.str(), " is not contiguous");
  return t.numel() ? static_cast<T*>(t.raw_data()) : nullptr;
}

using ::ternion::kernels::check_numel;

// Reads an i32 or i64 index tensor as int64, checking 0 <= id < V.
inline std::vector<int64_t> load_indices(std::string_view op, const Tensor& idx, int64_t V) {
  TN_CHECK(idx.dtype() == DType::i32 || idx.dtype() == DType::i64, op,
           "indices must be i32 or i64, got ", idx.str());
  TN_CHECK(idx.is_contiguous() && idx.device().is_cpu(), op,
           "indices must be a contiguous CPU tensor, got ", idx.str());
  std::vector<int64_t> ids(static_cast<size_t>(idx.numel()));
  if (idx.dtype() == DType::i32) {
    const int32_t* p = idx.numel() ? static_cast<const int32_t*>(idx.raw_data()) : nullptr;
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = p[i];
  } else {
    const int64_t* p = idx.numel() ? static_cast<const int64_t*>(idx.raw_data()) : nullptr;
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = p[i];
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    TN_CHECK(ids[i] >= 0 && ids[i] < V, op, "index ", ids[i], " at position ", i,
             " out of range [0, V=", V, ")");
  }
  return ids;
}

// Row-major C[M,N] = alpha op(A) op(B) + beta C with leading dimensions as stored.
// Empty M or N is a no-op; K == 0 scales C by beta (beta == 0 writes zeros).
inline void blas_gemm_impl(bool ta, bool tb, int m, int n, int k, float alpha, const float* a,
                           int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm_impl(bool ta, bool tb, int m, int n, int k, double alpha, const double* a,
                           int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      T* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
    }
    return;
  }
  blas_gemm_impl(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
                 static_cast<int>(std::max<int64_t>(1, lda)), b,
                 static_cast<int>(std::max<int64_t>(1, ldb)), beta, c,
                 static_cast<int>(std::max<int64_t>(1, ldc)));
}

// BLAS takes int sizes: checks that every size fits.
inline void check_blas_size(std::string_view op, std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes) TN_CHECK(s <= INT_MAX, op, "size ", s, " exceeds the BLAS int range");
}

}  // namespace ternion::kernels::cpu::detail

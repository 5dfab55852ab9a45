// gemm: c[b] = alpha * op(a[b]) @ op(b[b]) + beta * c[b]      (overwrites c when beta == 0)
//   a [Ba, M, K] (or [Ba, K, M] when trans_a), b [Bb, K, N] (or [Bb, N, K] when trans_b),
//   c [batch, M, N]; Ba and Bb are 1 (shared by every batch) or batch. Row-major, contiguous.
// Precision: OpenBLAS sgemm/dgemm, accumulation in the tensor's dtype.
// Parallelism: one BLAS call (threaded by OpenBLAS) when the problem folds into one GEMM;
// otherwise an OpenMP loop over the batch, each BLAS call single-threaded inside it.
#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
void gemm_impl(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
               double alpha, double beta) {
  const int64_t batch = c.size(0), M = c.size(1), N = c.size(2);
  const int64_t ba = a.size(0), bb = b.size(0);
  const int64_t K = trans_a ? a.size(1) : a.size(2);
  const int64_t lda = a.size(2), ldb = b.size(2);
  const T* pa = detail::ptr<T>("gemm", "a", a);
  const T* pb = detail::ptr<T>("gemm", "b", b);
  T* pc = detail::ptr<T>("gemm", "c", c);
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if (batch == 0 || M == 0 || N == 0) return;

  // a batched and not transposed, b shared: stack a's rows into one [batch*M, K] GEMM.
  if (batch == 1 || (ba == batch && bb == 1 && !trans_a)) {
    detail::check_blas_size("gemm", {batch * M});
    detail::blas_gemm<T>(trans_a, trans_b, batch * M, N, K, al, pa, lda, pb, ldb, be, pc, N);
    return;
  }
  const int64_t sa = ba == 1 ? 0 : a.size(1) * a.size(2);
  const int64_t sb = bb == 1 ? 0 : b.size(1) * b.size(2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < batch; ++i) {
    detail::blas_gemm<T>(trans_a, trans_b, M, N, K, al, pa + i * sa, lda, pb + i * sb, ldb, be,
                         pc + i * M * N, N);
  }
}

}  // namespace

void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
          double beta) {
  const GemmDims d = check_gemm(a, trans_a, b, trans_b, c);
  detail::check_blas_size("gemm", {a.size(1), a.size(2), b.size(1), b.size(2), d.M, d.N});
  detail::dispatch_float("gemm", c, [&](auto tag) {
    gemm_impl<decltype(tag)>(a, trans_a, b, trans_b, c, alpha, beta);
  });
}

}  // namespace ternion::kernels::cpu

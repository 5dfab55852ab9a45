// Elementwise kernels and the reductions that undo their broadcast. All tensors are
// viewed flat: a [N,C] broadcast against b [M,C] with N % M == 0 is element i of a
// against element i % (M*C) of b, so any trailing shape works.
//   add:      out[N,C] = a[N,C] + b[M,C]                        (overwrite; out may alias a)
//   mul:      out[N,C] = a[N,C] * b[M,C]                        (overwrite; out may alias a)
//   axpby:    out = alpha a + beta b; beta == 0 ignores b       (overwrite; may alias a or b)
//   sum_rows: out[M,C] += sum_r a[r*M + m, C]                   (accumulate; f64 partials)
//   sum_all:  out = sum a                                       (overwrite; f64)
// Determinism: no reduction is split across threads. sum_rows parallelises over columns
// and adds rows in ascending order; sum_all sums fixed blocks of kSumBlock elements into
// per-block f64 partials, then adds the partials serially. Results do not depend on the
// number of OpenMP threads.
#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

constexpr int64_t kSumBlock = 4096;  // sum_all block: fixed, so the order is too
constexpr int64_t kColBlock = 256;   // sum_rows column block

enum class Binary { add, mul };

template <typename T, Binary kOp>
void binary_impl(const char* op, const Tensor& a, const Tensor& b, Tensor& out) {
  const T* pa = detail::ptr<T>(op, "a", a);
  const T* pb = detail::ptr<T>(op, "b", b);
  T* po = detail::ptr<T>(op, "out", out);
  const int64_t n = a.numel(), m = b.numel();
  if (n == 0) return;
  if (m == n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = kOp == Binary::add ? pa[i] + pb[i] : pa[i] * pb[i];
    return;
  }
  const int64_t rows = n / m;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = pa + r * m;
    T* orow = po + r * m;
#pragma omp simd
    for (int64_t j = 0; j < m; ++j) orow[j] = kOp == Binary::add ? ar[j] + pb[j] : ar[j] * pb[j];
  }
}

template <Binary kOp>
void binary(const char* op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.numel(), m = b.numel();
  TN_CHECK((m > 0 && n % m == 0) || n == 0, op, "cannot broadcast b ", b.str(), " over a ",
           a.str());
  detail::check_numel(op, "out", out, n);
  detail::dispatch_float(op, a, [&](auto tag) { binary_impl<decltype(tag), kOp>(op, a, b, out); });
}

template <typename T>
void axpby_impl(double alpha, const Tensor& a, double beta, const Tensor& b, Tensor& out) {
  const T* pa = detail::ptr<T>("axpby", "a", a);
  T* po = detail::ptr<T>("axpby", "out", out);
  const int64_t n = a.numel();
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if (beta == 0.0) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) po[i] = al * pa[i];
    return;
  }
  const T* pb = detail::ptr<T>("axpby", "b", b);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = al * pa[i] + be * pb[i];
}

template <typename T>
void sum_rows_impl(const Tensor& a, Tensor& out) {
  const T* pa = detail::ptr<T>("sum_rows", "a", a);
  T* po = detail::ptr<T>("sum_rows", "out", out);
  const int64_t m = out.numel();
  if (m == 0) return;
  const int64_t rows = a.numel() / m;
  const int64_t nblocks = (m + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kColBlock, len = std::min(kColBlock, m - j0);
    double acc[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* ar = pa + r * m + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) acc[j] += static_cast<double>(ar[j]);
    }
    for (int64_t j = 0; j < len; ++j) po[j0 + j] = static_cast<T>(po[j0 + j] + acc[j]);
  }
}

template <typename T>
double sum_all_impl(const Tensor& a) {
  const T* pa = detail::ptr<T>("sum_all", "a", a);
  const int64_t n = a.numel();
  const int64_t nblocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(static_cast<size_t>(nblocks));
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t i0 = blk * kSumBlock, i1 = std::min(n, i0 + kSumBlock);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; ++i) s += static_cast<double>(pa[i]);
    partial[static_cast<size_t>(blk)] = s;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& out) { binary<Binary::add>("add", a, b, out); }

void mul(const Tensor& a, const Tensor& b, Tensor& out) { binary<Binary::mul>("mul", a, b, out); }

void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, Tensor& out) {
  detail::check_numel("axpby", "out", out, a.numel());
  if (beta != 0.0) detail::check_numel("axpby", "b", b, a.numel());
  detail::dispatch_float("axpby", a, [&](auto tag) {
    axpby_impl<decltype(tag)>(alpha, a, beta, b, out);
  });
}

void sum_rows(const Tensor& a, Tensor& out) {
  const int64_t n = a.numel(), m = out.numel();
  TN_CHECK((m > 0 && n % m == 0) || n == 0, "sum_rows", "cannot reduce a ", a.str(), " into out ",
           out.str());
  detail::dispatch_float("sum_rows", a, [&](auto tag) { sum_rows_impl<decltype(tag)>(a, out); });
}

void sum_all(const Tensor& a, Tensor& out) {
  detail::check_numel("sum_all", "out", out, 1);
  double total = 0.0;
  detail::dispatch_float("sum_all", a, [&](auto tag) { total = sum_all_impl<decltype(tag)>(a); });
  detail::dispatch_float("sum_all", out, [&](auto tag) {
    using T = decltype(tag);
    *detail::ptr<T>("sum_all", "out", out) = static_cast<T>(total);
  });
}

}  // namespace ternion::kernels::cpu

// Vocabulary-parallel softmax cross-entropy. This rank holds logits[N,Vl] whose first
// `count` columns are the vocabulary ids [begin, begin+count); columns count..Vl-1 are
// padding, never read (and written as 0 by the backward). targets[N] are i32 or i64, checked
// 0 <= t < vocab before any write (the error names the target and vocab); the backward,
// which has no vocab argument, checks t >= 0.
//   max:    row_max[n] = max_{v<count} logits[n,v]  (-inf when count == 0)
//   sums:   sums[0,n] = sum_{v<count} exp(logits[n,v] - row_max[n]);
//           sums[1,n] = logits[n, t_n-begin] if this rank holds t_n, else 0
//   finish: lse[n] = row_max[n] + log(sums[0,n]); loss = (1/N) sum_n (lse[n] - sums[1,n])
//   backward: dlogits[n,v] = dloss / N * (exp(logits[n,v] - lse[n]) - [begin+v == t_n]), v < count
// The caller all-reduces row_max (max) before sums, and sums (sum) before finish; then
// lse and loss are cross_entropy_forward's on the whole logits.
// row_max, sums and lse have the dtype of logits (f32 or f64); the loss is f32 or f64.
// Precision as in cross_entropy.cpp: exp in the dtype of logits through detail::vexp, exp
// sums and the loss in f64, the per-row losses summed serially in ascending n, so no
// result depends on the thread count.
#include <cmath>
#include <limits>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
void max_impl(const Tensor& logits, int64_t N, int64_t count, Tensor& row_max) {
  const T* pl = detail::ptr<T>("vocab_ce_max", "logits", logits);
  T* pm = detail::ptr<T>("vocab_ce_max", "row_max", row_max);
  const int64_t Vl = logits.size(-1);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* lr = pl + n * Vl;
    T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < count; ++v) mx = std::max(mx, lr[v]);
    pm[n] = mx;
  }
}

template <typename T>
void sums_impl(const Tensor& logits, const std::vector<int64_t>& tgt, int64_t begin,
               int64_t count, const Tensor& row_max, Tensor& sums) {
  const T* pl = detail::ptr<T>("vocab_ce_sums", "logits", logits);
  const T* pm = detail::ptr<T>("vocab_ce_sums", "row_max", row_max);
  T* ps = detail::ptr<T>("vocab_ce_sums", "sums", sums);
  const int64_t N = static_cast<int64_t>(tgt.size()), Vl = logits.size(-1);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* lr = pl + n * Vl;
    const T mx = pm[n];
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t v = 0; v < count; ++v) s += static_cast<double>(detail::vexp(lr[v] - mx));
    ps[n] = static_cast<T>(s);
    const int64_t t = tgt[static_cast<size_t>(n)] - begin;
    ps[N + n] = t >= 0 && t < count ? lr[t] : T(0);
  }
}

template <typename T>
double finish_impl(const Tensor& row_max, const Tensor& sums, Tensor& lse) {
  const T* pm = detail::ptr<T>("vocab_ce_finish", "row_max", row_max);
  const T* ps = detail::ptr<T>("vocab_ce_finish", "sums", sums);
  T* plse = detail::ptr<T>("vocab_ce_finish", "lse", lse);
  const int64_t N = row_max.numel();
  std::vector<double> row_loss(static_cast<size_t>(N));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const double l = static_cast<double>(pm[n]) + std::log(static_cast<double>(ps[n]));
    plse[n] = static_cast<T>(l);
    row_loss[static_cast<size_t>(n)] = l - static_cast<double>(ps[N + n]);
  }
  double total = 0.0;
  for (double r : row_loss) total += r;
  return N ? total / static_cast<double>(N) : 0.0;
}

template <typename T>
void backward_impl(const Tensor& logits, const std::vector<int64_t>& tgt, int64_t begin,
                   int64_t count, const Tensor& lse, double dloss, Tensor& dlogits) {
  const T* pl = detail::ptr<T>("vocab_ce_backward", "logits", logits);
  const T* plse = detail::ptr<T>("vocab_ce_backward", "lse", lse);
  T* pd = detail::ptr<T>("vocab_ce_backward", "dlogits", dlogits);
  const int64_t N = static_cast<int64_t>(tgt.size()), Vl = logits.size(-1);
  if (N == 0) return;
  const T g = static_cast<T>(dloss / static_cast<double>(N));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* lr = pl + n * Vl;
    T* dr = pd + n * Vl;
    const T l = plse[n];
#pragma omp simd
    for (int64_t v = 0; v < count; ++v) dr[v] = g * detail::vexp(lr[v] - l);
    for (int64_t v = count; v < Vl; ++v) dr[v] = T(0);
    const int64_t t = tgt[static_cast<size_t>(n)] - begin;
    if (t >= 0 && t < count) dr[t] -= g;
  }
}

}  // namespace

void vocab_ce_max(const Tensor& logits, int64_t count, Tensor& row_max) {
  constexpr const char* op = "vocab_ce_max";
  TN_CHECK(logits.ndim() >= 1, op, "logits must be [N,Vl], got ", logits.str());
  const int64_t Vl = logits.size(-1);
  TN_CHECK(row_max.defined(), op, "row_max is undefined");
  const int64_t N = Vl ? logits.numel() / Vl : row_max.numel();
  detail::check_numel(op, "row_max", row_max, N);
  check_vocab_logits(op, logits, N, count);
  detail::dispatch_float(op, logits, [&](auto tag) {
    max_impl<decltype(tag)>(logits, N, count, row_max);
  });
}

void vocab_ce_sums(const Tensor& logits, const Tensor& targets, int64_t begin, int64_t count,
                   int64_t vocab, const Tensor& row_max, Tensor& sums) {
  constexpr const char* op = "vocab_ce_sums";
  const int64_t N = targets.numel();
  check_vocab_logits(op, logits, N, count);
  check_vocab_range(op, "columns", begin, count, vocab);
  detail::check_numel(op, "row_max", row_max, N);
  detail::check_numel(op, "sums", sums, 2 * N);
  const std::vector<int64_t> tgt = detail::load_indices(op, targets, vocab);
  detail::dispatch_float(op, logits, [&](auto tag) {
    sums_impl<decltype(tag)>(logits, tgt, begin, count, row_max, sums);
  });
}

void vocab_ce_finish(const Tensor& row_max, const Tensor& sums, Tensor& lse, Tensor& loss) {
  constexpr const char* op = "vocab_ce_finish";
  TN_CHECK(row_max.defined(), op, "row_max is undefined");
  const int64_t N = row_max.numel();
  detail::check_numel(op, "sums", sums, 2 * N);
  detail::check_numel(op, "lse", lse, N);
  detail::check_numel(op, "loss", loss, 1);
  double value = 0.0;
  detail::dispatch_float(op, row_max, [&](auto tag) {
    value = finish_impl<decltype(tag)>(row_max, sums, lse);
  });
  detail::dispatch_float(op, loss, [&](auto tag) {
    using T = decltype(tag);
    *detail::ptr<T>(op, "loss", loss) = static_cast<T>(value);
  });
}

void vocab_ce_backward(const Tensor& logits, const Tensor& targets, int64_t begin,
                       int64_t count, const Tensor& lse, double dloss, Tensor& dlogits) {
  constexpr const char* op = "vocab_ce_backward";
  const int64_t N = targets.numel();
  check_vocab_logits(op, logits, N, count);
  TN_CHECK(begin >= 0, op, "begin ", begin, " must be >= 0");
  detail::check_numel(op, "lse", lse, N);
  detail::check_numel(op, "dlogits", dlogits, logits.numel());
  // No vocab argument here: vocab_ce_sums checked t < vocab on the same targets, so only
  // t >= 0 is checked (targets of other ranks fall outside [begin, begin+count)).
  const std::vector<int64_t> tgt =
      detail::load_indices(op, targets, std::numeric_limits<int64_t>::max());
  detail::dispatch_float(op, logits, [&](auto tag) {
    backward_impl<decltype(tag)>(logits, tgt, begin, count, lse, dloss, dlogits);
  });
}

}  // namespace ternion::kernels::cpu

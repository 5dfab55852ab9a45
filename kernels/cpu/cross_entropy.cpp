// Softmax cross-entropy over logits[N,V] with integer targets[N] (i32 or i64, checked
// 0 <= target < V before any write; the error names the target and V).
//   forward:  lse[n] = logsumexp_v logits[n,v]; loss = (1/N) sum_n (lse[n] - logits[n,t_n])
//             (lse, loss overwritten; loss = 0 when N == 0)
//   backward: dlogits[n,v] = dloss / N * (exp(logits[n,v] - lse[n]) - [v == t_n])  (overwrite)
// Precision: exp in the dtype of logits (f32 through detail::exp_f32, <= 2 ulp); exp sums
// and the loss accumulate in f64; the per-row losses are summed
// serially in ascending n, so the loss does not depend on the thread count.
#include <cmath>
#include <limits>

#include "kernels/cpu/common.h"
#include "kernels/cpu/vec_math.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
double forward_impl(const Tensor& logits, const std::vector<int64_t>& tgt, Tensor& lse) {
  const T* pl = detail::ptr<T>("cross_entropy_forward", "logits", logits);
  T* plse = detail::ptr<T>("cross_entropy_forward", "lse", lse);
  const int64_t N = static_cast<int64_t>(tgt.size()), V = logits.size(-1);
  std::vector<double> row_loss(tgt.size());
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* lr = pl + n * V;
    T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, lr[v]);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t v = 0; v < V; ++v) s += static_cast<double>(detail::vexp(lr[v] - mx));
    const double l = static_cast<double>(mx) + std::log(s);
    plse[n] = static_cast<T>(l);
    row_loss[static_cast<size_t>(n)] = l - static_cast<double>(lr[tgt[static_cast<size_t>(n)]]);
  }
  double total = 0.0;
  for (double r : row_loss) total += r;
  return N ? total / static_cast<double>(N) : 0.0;
}

template <typename T>
void backward_impl(const Tensor& logits, const std::vector<int64_t>& tgt, const Tensor& lse,
                   double dloss, Tensor& dlogits) {
  const T* pl = detail::ptr<T>("cross_entropy_backward", "logits", logits);
  const T* plse = detail::ptr<T>("cross_entropy_backward", "lse", lse);
  T* pd = detail::ptr<T>("cross_entropy_backward", "dlogits", dlogits);
  const int64_t N = static_cast<int64_t>(tgt.size()), V = logits.size(-1);
  if (N == 0) return;
  const T g = static_cast<T>(dloss / static_cast<double>(N));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* lr = pl + n * V;
    T* dr = pd + n * V;
    const T l = plse[n];
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) dr[v] = g * detail::vexp(lr[v] - l);
    dr[tgt[static_cast<size_t>(n)]] -= g;
  }
}

void check_shapes(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& lse) {
  TN_CHECK(logits.ndim() >= 1 && logits.numel() == targets.numel() * logits.size(-1), op,
           "logits must be [N,V] with N = targets.numel(), got logits ", logits.str(),
           ", targets ", targets.str());
  detail::check_numel(op, "lse", lse, targets.numel());
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse,
                           Tensor& loss) {
  check_shapes("cross_entropy_forward", logits, targets, lse);
  detail::check_numel("cross_entropy_forward", "loss", loss, 1);
  const std::vector<int64_t> tgt =
      detail::load_indices("cross_entropy_forward", targets, logits.size(-1));
  double value = 0.0;
  detail::dispatch_float("cross_entropy_forward", logits, [&](auto tag) {
    value = forward_impl<decltype(tag)>(logits, tgt, lse);
  });
  detail::dispatch_float("cross_entropy_forward", loss, [&](auto tag) {
    using T = decltype(tag);
    *detail::ptr<T>("cross_entropy_forward", "loss", loss) = static_cast<T>(value);
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            double dloss, Tensor& dlogits) {
  check_shapes("cross_entropy_backward", logits, targets, lse);
  detail::check_numel("cross_entropy_backward", "dlogits", dlogits, logits.numel());
  const std::vector<int64_t> tgt =
      detail::load_indices("cross_entropy_backward", targets, logits.size(-1));
  detail::dispatch_float("cross_entropy_backward", logits, [&](auto tag) {
    backward_impl<decltype(tag)>(logits, tgt, lse, dloss, dlogits);
  });
}

}  // namespace ternion::kernels::cpu

// Fused softmax cross-entropy over logits[N,V] (kernels/cpu/cross_entropy.cpp), one block
// per row; targets[N] i32 or i64, checked 0 <= target < V on the device before any write.
//   forward:  lse[n] = logsumexp_v logits[n,v]; loss = (1/N) sum_n (lse[n] - logits[n,t_n])
//             (lse, loss overwritten; loss = 0 when N == 0)
//   backward: dlogits[n,v] = dloss / N * (exp(logits[n,v] - lse[n]) - [v == t_n])  (overwrite)
// No softmax is materialised: the forward reads the logits twice (max, then sum of exp),
// the backward once; dlogits may alias logits, so the vocabulary-sized buffer exists once.
// dtypes: logits f32, bf16 or f16; lse f32 (or the logits' dtype); loss f32 or f64. Row math in
// f32; the per-row losses are added in f64 in a fixed order (reduce.cuh), so the loss does
// not depend on timing.
#include "kernels/cuda/reduce.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

template <typename T, typename L>
__global__ void ce_forward_kernel(const T* logits, const void* tgt, bool is64, L* lse,
                                  float* row_loss, int64_t V) {
  const int64_t n = blockIdx.x;
  const T* lr = logits + n * V;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, to_f(lr[v]));
  mx = detail::block_max(mx);
  float s = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += expf(to_f(lr[v]) - mx);
  s = detail::block_sum(s);
  if (threadIdx.x == 0) {
    const float l = mx + logf(s);
    lse[n] = from_f<L>(l);
    row_loss[n] = l - to_f(lr[detail::load_index(tgt, is64, n)]);
  }
}

template <typename T, typename L>
__global__ void ce_backward_kernel(const T* logits, const void* tgt, bool is64, const L* lse,
                                   float g, T* dlogits, int64_t V) {
  const int64_t n = blockIdx.x;
  const int64_t t = detail::load_index(tgt, is64, n);
  const float l = to_f(lse[n]);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float p = expf(to_f(logits[n * V + v]) - l);
    dlogits[n * V + v] = from_f<T>(g * (p - (v == t ? 1.f : 0.f)));
  }
}

void check_shapes(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& lse) {
  TN_CHECK(logits.ndim() >= 1 && logits.numel() == targets.numel() * logits.size(-1), op,
           "logits must be [N,V] with N = targets.numel(), got logits ", logits.str(),
           ", targets ", targets.str());
  TN_CHECK(targets.numel() <= 2147483647, op, "too many rows: ", targets.str());
  detail::check_numel(op, "lse", lse, targets.numel());
  TN_CHECK(lse.dtype() == DType::f32 || lse.dtype() == logits.dtype(), op, "lse ", lse.str(),
           " must be f32 or the dtype of logits ", logits.str());
}

// Calls f(T{}, L{}) for the (logits, lse) dtypes.
template <typename F>
void dispatch_ce(const char* op, const Tensor& logits, const Tensor& lse, F&& f) {
  detail::dispatch_compute(op, logits, [&](auto t) {
    if (lse.dtype() == DType::f32) f(t, float{});
    else f(t, t);
  });
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse,
                           Tensor& loss) {
  constexpr const char* op = "cross_entropy_forward";
  check_shapes(op, logits, targets, lse);
  detail::check_numel(op, "loss", loss, 1);
  const int64_t V = logits.size(-1), N = targets.numel();
  detail::check_indices(op, targets, V);
  TN_CHECK(V > 0 || N == 0, op, "empty vocabulary with ", N, " targets");
  Tensor row_loss = detail::scratch({N}, DType::f32, logits);
  float* prl = N ? static_cast<float*>(row_loss.raw_data()) : nullptr;
  if (N > 0) {
    dispatch_ce(op, logits, lse, [&](auto t, auto l) {
      using T = decltype(t);
      using L = decltype(l);
      ce_forward_kernel<T, L><<<static_cast<unsigned>(N), detail::kThreads, 0,
                                detail::stream_of(logits)>>>(
          detail::ptr<T>(op, "logits", logits), targets.raw_data(),
          targets.dtype() == DType::i64, detail::ptr<L>(op, "lse", lse), prl, V);
      TN_CUDA_CHECK_LAUNCH(op);
    });
  }
  detail::reduce_to_scalar<float, false>(op, prl, N, loss,
                                         N ? 1.0 / static_cast<double>(N) : 0.0);
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            double dloss, Tensor& dlogits) {
  constexpr const char* op = "cross_entropy_backward";
  check_shapes(op, logits, targets, lse);
  detail::check_numel(op, "dlogits", dlogits, logits.numel());
  const int64_t V = logits.size(-1), N = targets.numel();
  detail::check_indices(op, targets, V);
  if (N == 0 || V == 0) return;
  const float g = static_cast<float>(dloss / static_cast<double>(N));
  dispatch_ce(op, logits, lse, [&](auto t, auto l) {
    using T = decltype(t);
    using L = decltype(l);
    ce_backward_kernel<T, L><<<static_cast<unsigned>(N), detail::kThreads, 0,
                               detail::stream_of(logits)>>>(
        detail::ptr<T>(op, "logits", logits), targets.raw_data(), targets.dtype() == DType::i64,
        detail::ptr<L>(op, "lse", lse), g, detail::ptr<T>(op, "dlogits", dlogits), V);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

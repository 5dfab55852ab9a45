// Vocabulary-parallel softmax cross-entropy (kernels/cpu/vocab_cross_entropy.cpp), one block
// per row. This rank holds logits[N,Vl] whose first `count` columns are the vocabulary ids
// [begin, begin+count); columns count..Vl-1 are padding, never read (and written as 0 by the
// backward). targets[N] i32 or i64, checked 0 <= t < vocab on the device before any write
// (the backward, which has no vocab argument, checks t >= 0).
//   max:    row_max[n] = max_{v<count} logits[n,v]  (-inf when count == 0)
//   sums:   sums[0,n] = sum_{v<count} exp(logits[n,v] - row_max[n]);
//           sums[1,n] = logits[n, t_n-begin] if this rank holds t_n, else 0
//   finish: lse[n] = row_max[n] + log(sums[0,n]); loss = (1/N) sum_n (lse[n] - sums[1,n])
//   backward: dlogits[n,v] = dloss / N * (exp(logits[n,v] - lse[n]) - [begin+v == t_n]), v < count
// The caller all-reduces row_max (max) before sums, and sums (sum) before finish.
// dtypes: logits and dlogits f32, bf16 or f16; row_max, sums and lse f32; loss f32 or f64. Row
// math in f32 as in cross_entropy.cu; the per-row losses are added in f64 in a fixed order
// (reduce.cuh), so the loss does not depend on timing.
#include "kernels/cuda/reduce.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

template <typename T>
__global__ void vocab_ce_max_kernel(const T* logits, int64_t Vl, int64_t count, float* row_max) {
  const int64_t n = blockIdx.x;
  const T* lr = logits + n * Vl;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < count; v += blockDim.x) mx = fmaxf(mx, to_f(lr[v]));
  mx = detail::block_max(mx);
  if (threadIdx.x == 0) row_max[n] = mx;
}

template <typename T>
__global__ void vocab_ce_sums_kernel(const T* logits, const void* tgt, bool is64, int64_t begin,
                                     int64_t Vl, int64_t count, const float* row_max,
                                     float* sums, int64_t N) {
  const int64_t n = blockIdx.x;
  const T* lr = logits + n * Vl;
  const float mx = row_max[n];
  float s = 0.f;
  for (int64_t v = threadIdx.x; v < count; v += blockDim.x) s += expf(to_f(lr[v]) - mx);
  s = detail::block_sum(s);
  if (threadIdx.x == 0) {
    const int64_t t = detail::load_index(tgt, is64, n) - begin;
    sums[n] = s;
    sums[N + n] = t >= 0 && t < count ? to_f(lr[t]) : 0.f;
  }
}

__global__ void vocab_ce_finish_kernel(const float* row_max, const float* sums, float* lse,
                                       float* row_loss, int64_t N) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < N;
       n += int64_t{gridDim.x} * blockDim.x) {
    const float l = row_max[n] + logf(sums[n]);
    lse[n] = l;
    row_loss[n] = l - sums[N + n];
  }
}

template <typename T>
__global__ void vocab_ce_backward_kernel(const T* logits, const void* tgt, bool is64,
                                         int64_t begin, int64_t Vl, int64_t count,
                                         const float* lse, float g, T* dlogits) {
  const int64_t n = blockIdx.x;
  const int64_t t = detail::load_index(tgt, is64, n) - begin;
  const float l = lse[n];
  for (int64_t v = threadIdx.x; v < Vl; v += blockDim.x) {
    float d = 0.f;
    if (v < count) d = g * (expf(to_f(logits[n * Vl + v]) - l) - (v == t ? 1.f : 0.f));
    dlogits[n * Vl + v] = from_f<T>(d);
  }
}

// The CPU version's checks (kernels/checks.h), plus the grid limit.
int64_t check_logits(const char* op, const Tensor& logits, int64_t rows, int64_t count) {
  const int64_t Vl = check_vocab_logits(op, logits, rows, count);
  TN_CHECK(rows <= 2147483647, op, "too many rows: ", rows);
  return Vl;
}

}  // namespace

void vocab_ce_max(const Tensor& logits, int64_t count, Tensor& row_max) {
  constexpr const char* op = "vocab_ce_max";
  TN_CHECK(logits.ndim() >= 1, op, "logits must be [N,Vl], got ", logits.str());
  const int64_t Vl = logits.size(-1);
  TN_CHECK(row_max.defined(), op, "row_max is undefined");
  const int64_t N = Vl ? logits.numel() / Vl : row_max.numel();
  detail::check_numel(op, "row_max", row_max, N);
  check_logits(op, logits, N, count);
  float* pm = detail::ptr<float>(op, "row_max", row_max);
  if (N == 0) return;
  detail::dispatch_compute(op, logits, [&](auto tag) {
    using T = decltype(tag);
    vocab_ce_max_kernel<T><<<static_cast<unsigned>(N), detail::kThreads, 0,
                             detail::stream_of(logits)>>>(detail::ptr<T>(op, "logits", logits),
                                                          Vl, count, pm);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void vocab_ce_sums(const Tensor& logits, const Tensor& targets, int64_t begin, int64_t count,
                   int64_t vocab, const Tensor& row_max, Tensor& sums) {
  constexpr const char* op = "vocab_ce_sums";
  const int64_t N = targets.numel();
  const int64_t Vl = check_logits(op, logits, N, count);
  check_vocab_range(op, "columns", begin, count, vocab);
  detail::check_numel(op, "row_max", row_max, N);
  detail::check_numel(op, "sums", sums, 2 * N);
  detail::check_indices(op, targets, vocab);
  const float* pm = detail::ptr<float>(op, "row_max", row_max);
  float* ps = detail::ptr<float>(op, "sums", sums);
  if (N == 0) return;
  detail::dispatch_compute(op, logits, [&](auto tag) {
    using T = decltype(tag);
    vocab_ce_sums_kernel<T><<<static_cast<unsigned>(N), detail::kThreads, 0,
                              detail::stream_of(logits)>>>(
        detail::ptr<T>(op, "logits", logits), targets.raw_data(), targets.dtype() == DType::i64,
        begin, Vl, count, pm, ps, N);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void vocab_ce_finish(const Tensor& row_max, const Tensor& sums, Tensor& lse, Tensor& loss) {
  constexpr const char* op = "vocab_ce_finish";
  TN_CHECK(row_max.defined(), op, "row_max is undefined");
  const int64_t N = row_max.numel();
  detail::check_numel(op, "sums", sums, 2 * N);
  detail::check_numel(op, "lse", lse, N);
  detail::check_numel(op, "loss", loss, 1);
  const float* pm = detail::ptr<float>(op, "row_max", row_max);
  const float* ps = detail::ptr<float>(op, "sums", sums);
  float* plse = detail::ptr<float>(op, "lse", lse);
  Tensor row_loss = detail::scratch({N}, DType::f32, loss);
  float* prl = N ? static_cast<float*>(row_loss.raw_data()) : nullptr;
  if (N > 0) {
    vocab_ce_finish_kernel<<<detail::grid_for(N), detail::kThreads, 0, detail::stream_of(loss)>>>(
        pm, ps, plse, prl, N);
    TN_CUDA_CHECK_LAUNCH(op);
  }
  detail::reduce_to_scalar<float, false>(op, prl, N, loss,
                                         N ? 1.0 / static_cast<double>(N) : 0.0);
}

void vocab_ce_backward(const Tensor& logits, const Tensor& targets, int64_t begin,
                       int64_t count, const Tensor& lse, double dloss, Tensor& dlogits) {
  constexpr const char* op = "vocab_ce_backward";
  const int64_t N = targets.numel();
  const int64_t Vl = check_logits(op, logits, N, count);
  TN_CHECK(begin >= 0, op, "begin ", begin, " must be >= 0");
  detail::check_numel(op, "lse", lse, N);
  detail::check_numel(op, "dlogits", dlogits, logits.numel());
  // No vocab argument here: vocab_ce_sums checked t < vocab on the same targets.
  detail::check_indices(op, targets, INT64_MAX);
  if (N == 0 || Vl == 0) return;
  const float g = static_cast<float>(dloss / static_cast<double>(N));
  detail::dispatch_compute(op, logits, [&](auto tag) {
    using T = decltype(tag);
    vocab_ce_backward_kernel<T><<<static_cast<unsigned>(N), detail::kThreads, 0,
                                  detail::stream_of(logits)>>>(
        detail::ptr<T>(op, "logits", logits), targets.raw_data(), targets.dtype() == DType::i64,
        begin, Vl, count, detail::ptr<float>(op, "lse", lse), g,
        detail::ptr<T>(op, "dlogits", dlogits));
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

// The kernel contract: every device implements the same list of functions, declared
// once here. kernels/cpu/<name>.cpp holds the CPU version, kernels/cuda/<name>.cu the
// CUDA version; a build without the CUDA backend links kernels/cuda/no_cuda.cpp, whose
// stubs throw. Ops in src/autograd pick the device through dispatch() below, the only
// place that looks at a device type.
//
// Conventions for every kernel:
// - tensors are contiguous and on the kernel's device; the calling op has validated
//   shapes and dtypes (floating inputs are f32 or f64 on CPU);
// - outputs are overwritten unless the line says "+=" (gradient accumulation);
// - shapes use fixed letters: N rows (B*T), C channels, V vocabulary, B batch, H heads,
//   T time, D head size, K inner dim.
#pragma once

#include <cstdint>

#include "core/tensor.h"

// X(name, signature)
#define TN_KERNEL_LIST(X)                                                                       \
  /* c[b] = alpha * op(a[b]) @ op(b[b]) + beta * c[b]; a, b, c are 3-D [batch, rows, cols];  */ \
  /* a or b may have batch 1 and is then shared by every batch.                               */ \
  X(gemm, (const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,              \
           double alpha, double beta))                                                          \
  /* out[N,C] = a[N,C] + b[M,C] broadcast over rows, where N % M == 0 (M == N: elementwise).  */ \
  X(add, (const Tensor& a, const Tensor& b, Tensor& out))                                       \
  /* out = a * b with the same broadcasting as add.                                           */ \
  X(mul, (const Tensor& a, const Tensor& b, Tensor& out))                                       \
  /* out = alpha * a + beta * b, same shapes (beta == 0: b ignored, may be undefined).        */ \
  X(axpby, (double alpha, const Tensor& a, double beta, const Tensor& b, Tensor& out))          \
  /* out[M,C] += sum over r of a[r*M + m, C] (reduces the broadcast of add/mul).              */ \
  X(sum_rows, (const Tensor& a, Tensor& out))                                                   \
  /* out (scalar) = sum of all elements of a, accumulated in f64.                             */ \
  X(sum_all, (const Tensor& a, Tensor& out))                                                    \
  /* out[N,C] = w[idx[n], C]; idx i32 or i64, REQUIRES 0 <= idx < V (checked).                */ \
  X(embedding_forward, (const Tensor& idx, const Tensor& w, Tensor& out))                       \
  /* dw[V,C] += dout[n, C] at row idx[n].                                                     */ \
  X(embedding_backward, (const Tensor& idx, const Tensor& dout, Tensor& dw))                    \
  /* y[N,C] = (x - mean) * rstd * w + b; mean[N], rstd[N] saved (f32 or f64 as x).            */ \
  X(layernorm_forward, (const Tensor& x, const Tensor& w, const Tensor& b, double eps,         \
                        Tensor& y, Tensor& mean, Tensor& rstd))                                 \
  /* dx overwritten; dw[C] += ; db[C] += .                                                    */ \
  X(layernorm_backward, (const Tensor& x, const Tensor& w, const Tensor& mean,                 \
                         const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,          \
                         Tensor& db))                                                           \
  /* GELU, tanh approximation: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).           */ \
  X(gelu_forward, (const Tensor& x, Tensor& y))                                                 \
  X(gelu_backward, (const Tensor& x, const Tensor& dy, Tensor& dx))                             \
  /* softmax over the last dim of x[N,C].                                                     */ \
  X(softmax_forward, (const Tensor& x, Tensor& y))                                              \
  X(softmax_backward, (const Tensor& y, const Tensor& dy, Tensor& dx))                          \
  /* Causal attention, q, k, v, out [B,H,T,D]: out = softmax(q k^T / sqrt(D)) v, causal;      */ \
  /* lse [B,H,T] = logsumexp of each causal score row, saved instead of the [T,T] probs:      */ \
  /* f32, or f64 for f64 inputs. CUDA REQUIRES D <= 128.                                      */ \
  X(attention_forward, (const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,        \
                        Tensor& lse))                                                           \
  /* Recomputes P = exp(S - lse) by blocks; dq, dk, dv overwritten.                           */ \
  X(attention_backward, (const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, \
                         const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk,         \
                         Tensor& dv))                                                           \
  /* loss (scalar) = mean over n of logsumexp(logits[n]) - logits[n, targets[n]];             */ \
  /* lse[N] saved. targets i32 or i64, REQUIRES 0 <= target < V (checked).                    */ \
  X(cross_entropy_forward, (const Tensor& logits, const Tensor& targets, Tensor& lse,          \
                            Tensor& loss))                                                      \
  /* dlogits[N,V] = dloss / N * (softmax(logits) - onehot(targets)).                          */ \
  X(cross_entropy_backward, (const Tensor& logits, const Tensor& targets, const Tensor& lse,   \
                             double dloss, Tensor& dlogits))                                    \
  /* Vocabulary-parallel embedding. This rank's table w[Vl,C] holds the rows [begin,         */ \
  /* begin+count) of the whole [vocab,C] table in its first `count` rows (count <= Vl; the    */ \
  /* rows after them are padding and never read or written). ids REQUIRE 0 <= id < vocab.     */ \
  /* out[N,C] = w[idx[n]-begin] for ids in the range, 0 for the others (overwrite).           */ \
  X(vocab_embedding_forward, (const Tensor& idx, const Tensor& w, int64_t begin, int64_t count, \
                              int64_t vocab, Tensor& out))                                      \
  /* dw[Vl,C] += dout[n,C] at row idx[n]-begin for ids in the range; the others add nothing.   */ \
  X(vocab_embedding_backward, (const Tensor& idx, const Tensor& dout, int64_t begin,           \
                               int64_t count, int64_t vocab, Tensor& dw))                       \
  /* Vocabulary-parallel cross-entropy over logits[N,Vl] whose first `count` columns are the  */ \
  /* vocabulary ids [begin, begin+count) (columns >= count are padding and ignored).          */ \
  /* row_max, sums, lse and loss are f32 (f64 for f64 logits). targets REQUIRE                */ \
  /* 0 <= t < vocab. The caller reduces row_max (max) and then sums (sum) over the group.     */ \
  /* row_max[N] = max over v < count of logits[n,v], -inf if count == 0 (overwrite).          */ \
  X(vocab_ce_max, (const Tensor& logits, int64_t count, Tensor& row_max))                       \
  /* sums[2,N]: sums[0,n] = sum over v < count of exp(logits[n,v] - row_max[n]) (accumulated  */ \
  /* in f64 on the CPU); sums[1,n] = logits[n, t_n - begin] if begin <= t_n < begin+count,    */ \
  /* else 0 (overwrite).                                                                      */ \
  X(vocab_ce_sums, (const Tensor& logits, const Tensor& targets, int64_t begin, int64_t count,  \
                    int64_t vocab, const Tensor& row_max, Tensor& sums))                        \
  /* lse[n] = row_max[n] + log(sums[0,n]); loss (scalar) = (1/N) sum_n (lse[n] - sums[1,n]),  */ \
  /* summed in f64 in a fixed order, ascending n on the CPU (loss = 0 when N == 0).           */ \
  X(vocab_ce_finish, (const Tensor& row_max, const Tensor& sums, Tensor& lse, Tensor& loss))    \
  /* dlogits[N,Vl] = dloss / N * (exp(logits[n,v] - lse[n]) - [begin + v == t_n]) for         */ \
  /* v < count, 0 for padding columns (overwrite). Having no vocab, it checks only t >= 0.    */ \
  X(vocab_ce_backward, (const Tensor& logits, const Tensor& targets, int64_t begin,            \
                        int64_t count, const Tensor& lse, double dloss, Tensor& dlogits))       \
  /* out = x * keep / (1 - p), keep[i] = uniform_at(key, stream, offset + i) >= p: `offset` */ \
  /* is the global index of x's first element, so a part of a tensor draws that part of the  */ \
  /* whole tensor's mask. The backward is the same kernel on dy with the same arguments.     */ \
  X(dropout, (const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset,      \
              Tensor& out))                                                                   \
  /* out = x converted to out's dtype, rounded to nearest even; same numel. CUDA converts     */ \
  /* between f32 and bf16 or f16 (mixed precision); the CPU between any floating dtypes.     */ \
  X(cast, (const Tensor& x, Tensor& out))                                                       \
  /* out (scalar, f64) = sum of a[i]^2, accumulated in f64 (gradient norms).                  */ \
  X(sum_squares, (const Tensor& a, Tensor& out))                                                \
  /* One AdamW update in place (PyTorch semantics), t = step >= 1:                            */ \
  /*   p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;                              */ \
  /*   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps).  p, g, m, v same shape.     */ \
  X(adamw, (Tensor& p, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1,         \
            double beta2, double eps, double weight_decay, int64_t step))

namespace ternion::kernels {

#define TN_DECLARE_KERNEL(name, sig) void name sig;
namespace cpu {
TN_KERNEL_LIST(TN_DECLARE_KERNEL)
}
namespace cuda {
TN_KERNEL_LIST(TN_DECLARE_KERNEL)
}
#undef TN_DECLARE_KERNEL

// Runs the CPU or the CUDA version of a kernel for `device`.
template <typename... P, typename... A>
void dispatch(Device device, void (*cpu_fn)(P...), void (*cuda_fn)(P...), A&&... args) {
  if (device.is_cuda()) cuda_fn(std::forward<A>(args)...);
  else cpu_fn(std::forward<A>(args)...);
}

}  // namespace ternion::kernels

// TN_KERNEL(name, device, args...): run kernel `name` on `device`.
#define TN_KERNEL(name, device, ...)                                                 \
  ::ternion::kernels::dispatch((device), &::ternion::kernels::cpu::name,             \
                               &::ternion::kernels::cuda::name, __VA_ARGS__)

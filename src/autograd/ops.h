// Differentiable ops. Each validates its inputs (errors start with "[op]" and show the
// shapes), computes through the kernels of kernels/kernels.h on the inputs' device, and
// records one node whose backward lives beside it in ops/<family>.cpp.
// Floating ops take f32 or f64 on CPU (f32 or bf16 on CUDA); all tensor inputs of one call
// share dtype and device, and outputs and gradients are allocated on that device. With
// bf16/f16 inputs the saved statistics (layer_norm's mean/rstd, cross_entropy's logsumexp)
// and the loss are f32.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace ternion::autograd {

// idx [B,T] (i32/i64), weight [V,C] -> [B,T,C]. Any leading shape of idx works.
Tensor embedding(const Tensor& idx, const Tensor& weight);
// The part of an embedding one vocabulary-parallel rank holds: weight [Vl, C] holds rows
// [begin, begin + count) of the whole [vocab, C] table in its first count rows (the rest is
// padding, never read). Ids in the range look up their row, the others give zeros, so the
// sum over the ranks of a tensor-parallel group is the whole lookup (parallel/tensor_parallel.h).
Tensor vocab_embedding(const Tensor& idx, const Tensor& weight, int64_t begin, int64_t count, int64_t vocab);
// x [...,K] · w[N,K]ᵀ + b[N] -> [...,N]; b may be undefined (no bias).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());
// a [...,M,K] @ b [...,K,N] -> [...,M,N]; batch dims equal, or b 2-D (shared).
Tensor matmul(const Tensor& a, const Tensor& b);

// a + b and a * b: same shape, or b's shape a suffix of a's (broadcast over leading dims).
Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double s);
// x converted to `dtype` (x itself when it already has it). Mixed precision casts the f32
// master weights to bf16/f16 with it; the backward casts the gradient back to x's dtype.
Tensor cast(const Tensor& x, DType dtype);

// Over the last dim C: x [...,C], w [C], b [C].
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps = 1e-5);
Tensor gelu(const Tensor& x);  // tanh approximation
Tensor softmax(const Tensor& x);  // over the last dim
// Causal scaled-dot-product attention: q, k, v [B,H,T,D] -> [B,H,T,D].
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v);
// Mean over tokens of -log softmax(logits)[target]: logits [...,V], targets [...] ints.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);
// Keeps each element with probability 1-p, scaling by 1/(1-p); the mask is a pure
// function of (key, stream, offset + element index), so a recomputation reproduces it and
// a part of a larger tensor (x's first element at global index `offset`) draws that part
// of the whole tensor's mask.
Tensor dropout(const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset = 0);

// Shapes. reshape and transpose return views where the layout allows.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int dim0, int dim1);
Tensor contiguous(const Tensor& x);
// The identity, recorded so that its backward runs fn() before passing the gradient on:
// a hook at a region's output that fires right before the region's own backward (ZeRO-3
// gathers the region's parameters there). x itself when nothing is recorded.
Tensor backward_hook(const Tensor& x, std::function<void()> fn);
// Splits `dim` into pieces of the given sizes (which must sum to the dim).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);
Tensor concat(const std::vector<Tensor>& xs, int dim);

// Reductions over all elements -> scalar (accumulated in f64).
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);

}  // namespace ternion::autograd

// Tensor parallelism's collectives as differentiable ops (Megatron-LM's mappings), in
// conjugate pairs: each op's backward is its partner's forward. Every op is collective over
// the tensor-parallel group `tp` (every member calls it, in the same order, on the same
// shapes) and works on host (MPI) and device (NCCL) tensors; over a group of one each is
// the identity. Gradients leave these ops contiguous.
//
//   forward                           backward
//   copy_to_tp        identity        all-reduce (sum)
//   reduce_from_tp    all-reduce      identity
//   scatter_to_sp     own slice       all-gather
//   gather_from_sp    all-gather      own slice
//   reduce_scatter_to_sp reduce-scatter  all-gather
//   all_gather_from_sp   all-gather      reduce-scatter
//
// Sequence parallelism splits the token dimension as the data lies: an activation
// [B, T, C] is read as its B·T tokens of C channels in memory order (sample-major, then
// position), and tp rank r holds tokens [r·B·T/tp, (r+1)·B·T/tp) as a contiguous
// [B·T/tp, C] tensor. Gathering is then a plain concatenation in rank order, with no
// permuting copy, and a dropout mask over a slice is the whole tensor's mask at one offset.
// With one sample per micro-batch this is exactly a split of the sequence.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace ternion::parallel {

// Forward identity; backward all-reduces the gradient (sum) over tp. Put in front of a
// column-parallel layer: every rank's partial input gradient adds up to the whole.
// Backward: reduce_from_tp's forward.
Tensor copy_to_tp(const Tensor& x, Communicator& tp);
// Forward all-reduce (sum) over tp; backward identity. Put after a row-parallel layer
// (before its bias): the partial products add up to the layer's output.
// Backward: copy_to_tp's forward.
Tensor reduce_from_tp(const Tensor& x, Communicator& tp);

// The token count of x (all dims but the last) must be divisible by tp.size().
// Forward: this rank's tokens of x as [tokens/tp, C]; backward: all-gather of the
// gradient into x's shape. Backward: gather_from_sp's forward.
Tensor scatter_to_sp(const Tensor& x, Communicator& tp);
// Forward: all-gather of every rank's [tokens/tp, C] slice into `full` (whose token count
// is tp.size() times x's); backward: this rank's slice of the gradient (the consumer
// computed the same gradient on every rank). Backward: scatter_to_sp's forward.
Tensor gather_from_sp(const Tensor& x, const Shape& full, Communicator& tp);
// Forward: reduce-scatter (sum) of x [.., C] over tp into this rank's [tokens/tp, C];
// backward: all-gather of the gradient into x's shape. After a row-parallel layer with
// sequence parallelism. Backward: all_gather_from_sp's forward.
Tensor reduce_scatter_to_sp(const Tensor& x, Communicator& tp);
// Forward: all-gather into `full`; backward: reduce-scatter (sum) of the gradient to this
// rank's slice (every rank's consumer produced a partial gradient of the whole). In front
// of a column-parallel layer with sequence parallelism. Backward: reduce_scatter_to_sp's
// forward.
Tensor all_gather_from_sp(const Tensor& x, const Shape& full, Communicator& tp);

// The vocabulary rows one tp rank holds: ids [begin, begin + count) of `vocab`, stored in
// the first `count` rows of a table of `rows` rows (the rest is padding).
struct VocabShard {
  int64_t begin = 0, count = 0, rows = 0, vocab = 0;
};
// Rank r of n holds ids [vocab·r/n, vocab·(r+1)/n) (every rank some, balanced), padded to
// `rows` = ceil(vocab/n) rounded up to a multiple of 64, the same on every rank, so the
// padded vocabulary n·rows is a multiple of n and of 64. n == 1: the whole vocabulary,
// unpadded.
VocabShard vocab_shard(int64_t vocab, int rank, int size);

// Vocabulary-parallel softmax cross-entropy, the mean over tokens: logits [..., rows] are
// this rank's columns (its VocabShard; padding columns ignored), targets [...] global ids.
// The row max (max), then the sum of exponentials and the target logit (one sum of 2N) are
// reduced over tp; the backward needs no communication and writes only this rank's
// columns (padding columns get 0). No rank holds the whole [..., vocab] logits. Returns the
// loss (f32, f64 for f64 logits), equal on every rank.
Tensor vocab_parallel_cross_entropy(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                    Communicator& tp);

}  // namespace ternion::parallel

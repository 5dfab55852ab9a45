#include "parallel/tensor_parallel.h"

#include "autograd/ops/common.h"
#include "autograd/record.h"

namespace ternion::parallel {

using autograd::Node;
using autograd::record;

namespace {

// Tokens of x: the product of every dim but the last.
int64_t tokens_of(const Tensor& x) { return x.ndim() ? x.numel() / std::max<int64_t>(x.shape().back(), 1) : 1; }

Tensor gather_tokens(const Tensor& slice, const Shape& full, Communicator& tp) {
  Tensor out = Tensor::empty(full, slice.dtype(), slice.device());
  tp.all_gather(slice.contiguous(), out);
  return out;
}

Tensor scatter_tokens(const Tensor& x, Communicator& tp) {  // a view of this rank's rows
  Tensor rows = autograd::detail::rows(x);
  const int64_t n = rows.size(0) / tp.size();
  return rows.slice(0, tp.rank() * n, (tp.rank() + 1) * n);
}

Tensor reduce_scatter_tokens(const Tensor& x, Communicator& tp) {
  Tensor rows = autograd::detail::rows(x);
  Tensor out = Tensor::empty({rows.size(0) / tp.size(), rows.size(1)}, x.dtype(), x.device());
  tp.reduce_scatter(rows, out, ReduceOp::kSum);
  return out;
}

Tensor all_reduced(const Tensor& x, Communicator& tp) {
  Tensor y = x.contiguous().clone();
  tp.all_reduce(y, ReduceOp::kSum);
  return y;
}

void check_split(const Tensor& x, Communicator& tp, const char* op) {
  TN_CHECK(x.defined() && x.ndim() >= 1, op, "needs a tensor with a channel dim, got ",
           x.defined() ? x.str() : std::string("an undefined tensor"));
  TN_CHECK(tokens_of(x) % tp.size() == 0, op, "the ", tokens_of(x), " tokens of ", x.str(),
           " do not split over the ", tp.size(), " ranks of ", tp.describe());
}

void check_full(const Tensor& x, const Shape& full, Communicator& tp, const char* op) {
  TN_CHECK(x.defined() && x.ndim() == 2 && !full.empty() && full.back() == x.size(1) &&
               shape_numel(full) == x.numel() * tp.size(),
           op, "the slice ", x.defined() ? x.str() : std::string("(undefined)"), " is not one of ", tp.size(),
           " equal parts of ", shape_str(full), " (", tp.describe(), ")");
}

class CopyToTp final : public Node {
 public:
  explicit CopyToTp(Communicator& tp) : tp_(tp) {}
  std::string_view name() const override { return "CopyToTp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override { return {all_reduced(grads[0], tp_)}; }

 private:
  Communicator& tp_;
};

class ReduceFromTp final : public Node {
 public:
  std::string_view name() const override { return "ReduceFromTp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override { return {grads[0]}; }
};

class ScatterToSp final : public Node {
 public:
  ScatterToSp(Shape full, Communicator& tp) : full_(std::move(full)), tp_(tp) {}
  std::string_view name() const override { return "ScatterToSp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override { return {gather_tokens(grads[0], full_, tp_)}; }

 private:
  Shape full_;
  Communicator& tp_;
};

class GatherFromSp final : public Node {
 public:
  explicit GatherFromSp(Communicator& tp) : tp_(tp) {}
  std::string_view name() const override { return "GatherFromSp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {scatter_tokens(grads[0], tp_).contiguous().clone()};
  }

 private:
  Communicator& tp_;
};

class ReduceScatterToSp final : public Node {
 public:
  ReduceScatterToSp(Shape full, Communicator& tp) : full_(std::move(full)), tp_(tp) {}
  std::string_view name() const override { return "ReduceScatterToSp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override { return {gather_tokens(grads[0], full_, tp_)}; }

 private:
  Shape full_;
  Communicator& tp_;
};

class AllGatherFromSp final : public Node {
 public:
  explicit AllGatherFromSp(Communicator& tp) : tp_(tp) {}
  std::string_view name() const override { return "AllGatherFromSp"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {reduce_scatter_tokens(grads[0], tp_)};
  }

 private:
  Communicator& tp_;
};

class VocabParallelCrossEntropy final : public Node {
 public:
  VocabParallelCrossEntropy(const Tensor& logits2, const Tensor& targets, const Tensor& lse, Shape shape,
                            VocabShard shard)
      : shape_(std::move(shape)), shard_(shard) {
    save(logits2);
    save(targets);
    save(lse);
  }
  std::string_view name() const override { return "VocabParallelCrossEntropy"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& logits = saved(0);
    Tensor dlogits = autograd::detail::empty_like(logits);
    TN_KERNEL(vocab_ce_backward, logits.device(), logits, saved(1), shard_.begin, shard_.count, saved(2),
              grads[0].item(), dlogits);
    return {dlogits.view(shape_), Tensor()};
  }

 private:
  Shape shape_;
  VocabShard shard_;
};

}  // namespace

Tensor copy_to_tp(const Tensor& x, Communicator& tp) {
  TN_CHECK(x.defined(), "copy_to_tp", "the input is undefined");
  if (!autograd::needs_grad({x})) return x;
  Tensor y = autograd::detach(x);  // the same data, a node of its own
  record<CopyToTp>({x}, {y}, tp);
  // A recomputable input (a LayerNorm output under selective checkpointing) stays one for
  // the layer that saves y: y is x's storage.
  if (const auto& m = x.impl_ptr()->autograd; m && m->recipe) y.impl_ptr()->autograd->recipe = m->recipe;
  return y;
}

Tensor reduce_from_tp(const Tensor& x, Communicator& tp) {
  TN_CHECK(x.defined(), "reduce_from_tp", "the input is undefined");
  Tensor y = all_reduced(x, tp);
  record<ReduceFromTp>({x}, {y});
  return y;
}

Tensor scatter_to_sp(const Tensor& x, Communicator& tp) {
  check_split(x, tp, "scatter_to_sp");
  Tensor y = scatter_tokens(x, tp).contiguous().clone();
  record<ScatterToSp>({x}, {y}, x.shape(), tp);
  return y;
}

Tensor gather_from_sp(const Tensor& x, const Shape& full, Communicator& tp) {
  check_full(x, full, tp, "gather_from_sp");
  Tensor y = gather_tokens(x, full, tp);
  record<GatherFromSp>({x}, {y}, tp);
  return y;
}

Tensor reduce_scatter_to_sp(const Tensor& x, Communicator& tp) {
  check_split(x, tp, "reduce_scatter_to_sp");
  Tensor y = reduce_scatter_tokens(x, tp);
  record<ReduceScatterToSp>({x}, {y}, x.shape(), tp);
  return y;
}

Tensor all_gather_from_sp(const Tensor& x, const Shape& full, Communicator& tp) {
  check_full(x, full, tp, "all_gather_from_sp");
  Tensor y = gather_tokens(x, full, tp);
  record<AllGatherFromSp>({x}, {y}, tp);
  return y;
}

VocabShard vocab_shard(int64_t vocab, int rank, int size) {
  TN_CHECK(size >= 1 && rank >= 0 && rank < size, "vocab_shard", "rank ", rank, " is not a rank of ", size);
  TN_CHECK(vocab >= size, "vocab_shard", "a vocabulary of ", vocab, " does not split over ", size, " ranks");
  VocabShard s;
  s.vocab = vocab;
  s.begin = vocab * rank / size;
  s.count = vocab * (rank + 1) / size - s.begin;
  if (size == 1) {
    s.rows = vocab;
  } else {
    constexpr int64_t kAlign = 64;
    const int64_t most = (vocab + size - 1) / size;
    s.rows = (most + kAlign - 1) / kAlign * kAlign;
  }
  return s;
}

Tensor vocab_parallel_cross_entropy(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                    Communicator& tp) {
  using namespace autograd::detail;
  constexpr const char* op = "vocab_parallel_cross_entropy";
  check_float(logits, op, "logits");
  check_index(targets, op, "targets");
  TN_CHECK(logits.device() == targets.device(), op, "device mismatch: ", logits.str(), " vs ", targets.str());
  TN_CHECK(logits.ndim() == targets.ndim() + 1 &&
               std::equal(targets.shape().begin(), targets.shape().end(), logits.shape().begin()) &&
               logits.shape().back() == shard.rows,
           op, "logits ", logits.str(), " must be targets' shape plus this rank's ", shard.rows,
           " vocabulary columns; targets ", targets.str());
  Tensor l2 = rows(logits);
  Tensor t1 = targets.contiguous().view({targets.numel()});
  const int64_t N = l2.size(0);
  const DType sd = stats_dtype(logits.dtype());
  Tensor row_max = Tensor::empty({N}, sd, logits.device());
  TN_KERNEL(vocab_ce_max, logits.device(), l2, shard.count, row_max);
  tp.all_reduce(row_max, ReduceOp::kMax);
  Tensor sums = Tensor::empty({2, N}, sd, logits.device());
  TN_KERNEL(vocab_ce_sums, logits.device(), l2, t1, shard.begin, shard.count, shard.vocab, row_max, sums);
  tp.all_reduce(sums, ReduceOp::kSum);
  Tensor lse = Tensor::empty({N}, sd, logits.device());
  Tensor loss = Tensor::empty({}, sd, logits.device());
  TN_KERNEL(vocab_ce_finish, logits.device(), row_max, sums, lse, loss);
  record<VocabParallelCrossEntropy>({logits, targets}, {loss}, l2, t1, lse, logits.shape(), shard);
  return loss;
}

}  // namespace ternion::parallel

// Fused softmax cross-entropy, mean over tokens: the forward keeps only the per-row
// logsumexp, and the backward rebuilds the softmax from the logits.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

class CrossEntropy final : public Node {
 public:
  CrossEntropy(const Tensor& logits2, const Tensor& targets, const Tensor& lse, Shape shape)
      : shape_(std::move(shape)) {
    save(logits2);
    save(targets);
    save(lse);
  }
  std::string_view name() const override { return "CrossEntropy"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& logits = saved(0);
    Tensor dlogits = empty_like(logits);
    TN_KERNEL(cross_entropy_backward, logits.device(), logits, saved(1), saved(2), grads[0].item(),
              dlogits);
    return {dlogits.view(shape_), Tensor()};
  }

 private:
  Shape shape_;
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets) {
  check_float(logits, "cross_entropy", "logits");
  check_index(targets, "cross_entropy", "targets");
  TN_CHECK(logits.device() == targets.device(), "cross_entropy", "device mismatch: ", logits.str(),
           " vs ", targets.str());
  TN_CHECK(logits.ndim() == targets.ndim() + 1 &&
               std::equal(targets.shape().begin(), targets.shape().end(), logits.shape().begin()),
           "cross_entropy", "logits ", logits.str(), " must be targets' shape plus V; targets ",
           targets.str());
  Tensor l2 = rows(logits);
  Tensor t1 = targets.contiguous().view({targets.numel()});
  Tensor lse = Tensor::empty({l2.size(0)}, stats_dtype(logits.dtype()), logits.device());
  Tensor loss = Tensor::empty({}, stats_dtype(logits.dtype()), logits.device());
  TN_KERNEL(cross_entropy_forward, logits.device(), l2, t1, lse, loss);
  record<CrossEntropy>({logits, targets}, {loss}, l2, t1, lse, logits.shape());
  return loss;
}

}  // namespace ternion::autograd

// Activation checkpointing (reentrant form): the forward keeps only the inputs; the
// backward recomputes the sub-graph with recording on and runs a nested backward.
#include "autograd/autograd.h"
#include "autograd/record.h"

namespace ternion::autograd {

namespace {

class Checkpoint final : public Node {
 public:
  Checkpoint(CheckpointFn fn, const std::vector<Tensor>& inputs) : fn_(std::move(fn)) {
    for (const Tensor& t : inputs) {
      input_requires_grad_.push_back(requires_grad(t));
      save(detach(t));
    }
  }
  std::string_view name() const override { return "Checkpoint"; }

  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    GradModeGuard enable(true);
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < input_requires_grad_.size(); ++i) {
      Tensor x = detach(saved(i));
      if (input_requires_grad_[i]) set_requires_grad(x);
      inputs.push_back(x);
    }
    std::vector<Tensor> outputs = fn_(inputs);
    TN_CHECK(outputs.size() == grads.size(), "checkpoint", "recomputation returned ",
             outputs.size(), " outputs, the forward ", grads.size());
    std::vector<Tensor> roots, seeds;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!requires_grad(outputs[i])) continue;
      roots.push_back(outputs[i]);
      seeds.push_back(grads[i]);
    }
    if (!roots.empty()) autograd::backward(roots, seeds);
    std::vector<Tensor> input_grads;
    for (size_t i = 0; i < inputs.size(); ++i)
      input_grads.push_back(input_requires_grad_[i] ? grad(inputs[i]) : Tensor());
    return input_grads;
  }

 private:
  CheckpointFn fn_;
  std::vector<bool> input_requires_grad_;
};

// A fresh handle on t's data, so attaching history never touches a caller's tensor.
Tensor alias(const Tensor& t) { return detach(t); }

}  // namespace

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> outputs;
  {
    NoGrad no_grad;
    outputs = fn(inputs);
  }
  if (!grad_enabled()) return outputs;
  for (Tensor& t : outputs) t = alias(t);
  // Recorded even when no input requires grad: parameters used inside fn still need
  // the recomputation to receive their gradients.
  auto node = std::make_shared<Checkpoint>(fn, inputs);
  NodeBuilder::connect(node, inputs, outputs);
  return outputs;
}

}  // namespace ternion::autograd

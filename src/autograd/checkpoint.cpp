// Activation checkpointing (reentrant form): the forward keeps only the inputs; the
// backward recomputes the sub-graph with recording on and back-propagates through it
// with backward_to, which stops at the region's inputs and at every tensor from outside
// the region that its forward read (parameters among them). Those gradients leave
// through this node's edges, so the outer backward accumulates them: a leaf's .grad gets
// one sum and its grad-ready hooks fire once, when every use has contributed.
#include <set>

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

  // Edges: the inputs, then the tensors from outside the region (their edges are the
  // ones the recomputed graph reaches too).
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    GradModeGuard enable(true);
    const size_t n = input_requires_grad_.size();
    std::vector<Tensor> inputs;
    std::vector<Edge> targets;
    for (size_t i = 0; i < n; ++i) {
      Tensor x = detach(saved(i));
      if (input_requires_grad_[i]) set_requires_grad(x);
      inputs.push_back(x);
      targets.push_back(gradient_edge(x));
    }
    for (size_t i = n; i < next_edges().size(); ++i) targets.push_back(next_edges()[i]);
    std::vector<Tensor> outputs = fn_(inputs);
    TN_CHECK(outputs.size() == grads.size(), "checkpoint", "recomputation returned ",
             outputs.size(), " outputs, the forward ", grads.size());
    std::vector<Tensor> roots, seeds;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!requires_grad(outputs[i])) continue;
      roots.push_back(outputs[i]);
      seeds.push_back(grads[i]);
    }
    if (roots.empty()) return std::vector<Tensor>(targets.size());
    return backward_to(roots, seeds, targets);
  }

 private:
  CheckpointFn fn_;
  std::vector<bool> input_requires_grad_;
};

// A fresh handle on t's data, so attaching history never touches a caller's tensor.
Tensor alias(const Tensor& t) { return detach(t); }

}  // namespace

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return fn(inputs);
  std::vector<Tensor> outputs, outside;
  {
    NoGrad no_grad;
    UsedTensorsScope scope;
    outputs = fn(inputs);
    outside = std::move(scope.used);
  }
  // The edges the region's inputs already give, then each other tensor's once. `edges`
  // holds them: a leaf's AccumulateGrad lives only while something holds it.
  std::vector<Edge> edges;
  std::set<std::pair<const Node*, int>> seen;
  std::vector<Tensor> edges_from = inputs;
  for (const Tensor& t : inputs)
    if (Edge e = gradient_edge(t); e.node && seen.insert({e.node.get(), e.input_nr}).second) edges.push_back(e);
  for (const Tensor& t : outside) {
    Edge e = gradient_edge(t);
    if (!e.node || !seen.insert({e.node.get(), e.input_nr}).second) continue;
    edges.push_back(std::move(e));
    edges_from.push_back(t);
  }
  if (edges.empty()) return outputs;  // nothing in the region needs a gradient
  for (Tensor& t : outputs) t = alias(t);
  auto node = std::make_shared<Checkpoint>(fn, inputs);
  NodeBuilder::connect(node, edges_from, outputs);
  return outputs;
}

}  // namespace ternion::autograd

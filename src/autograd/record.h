// Helpers for op implementations: deciding whether to record and wiring a node between
// an op's inputs and outputs; and what checkpoint() and recomputable() need of the
// engine. Only files that define differentiable ops include this (src/autograd, and the
// collectives as ops of src/parallel/tensor_parallel.cpp).
#pragma once

#include <memory>
#include <vector>

#include "autograd/autograd.h"
#include "autograd/node.h"

namespace ternion::autograd {

// True when grad mode is on and any input requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

class NodeBuilder {
 public:
  // Points `node` at the inputs' nodes and makes it the grad_fn of `outputs`.
  // Outputs must be fresh tensors (no autograd history).
  static void connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                      const std::vector<Tensor>& outputs);
  static void init_accumulator(Node& acc, const Tensor& leaf);
};

// Records a node of type N when needed: N is built with `args...` only then.
// Returns the node (null when nothing was recorded) so the caller can save tensors
// into it before it is used.
template <typename N, typename... Args>
std::shared_ptr<N> record(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                          Args&&... args) {
  if (!needs_grad(inputs)) return nullptr;
  auto node = std::make_shared<N>(std::forward<Args>(args)...);
  NodeBuilder::connect(node, inputs, outputs);
  return node;
}

// The gradient `g` summed with `acc` (acc may be undefined). Does not alias either.
Tensor add_gradients(const Tensor& acc, const Tensor& g);

// Where t's gradient goes: its grad_fn and output, or a leaf's AccumulateGrad; no node
// when t needs no gradient.
Edge gradient_edge(const Tensor& t);

// A backward from `roots` (seeded as backward() does) that stops at `targets`: the
// gradient arriving at each target edge is returned (undefined where none arrives), the
// target nodes and what lies behind them do not run, so no .grad changes and no hook
// fires there. Nodes between the roots and the targets run and release as in backward().
std::vector<Tensor> backward_to(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                                const std::vector<Edge>& targets);

// While one lives on this thread, ops that run without recording report every input
// that requires grad into `used` (checkpoint: which tensors from outside a region its
// forward read). Scopes nest; the innermost collects.
class UsedTensorsScope {
 public:
  UsedTensorsScope();
  ~UsedTensorsScope();
  UsedTensorsScope(const UsedTensorsScope&) = delete;
  UsedTensorsScope& operator=(const UsedTensorsScope&) = delete;
  std::vector<Tensor> used;

 private:
  std::vector<Tensor>* prev_;
};

// What a node keeps in place of a recomputable() tensor: the function, its inputs, and
// the layout of the first result, which every recomputation must reproduce.
struct SavedRecipe {
  RecomputeFn fn;
  std::vector<Tensor> inputs;
  Shape shape, strides;
  int64_t offset = 0;
  DType dtype = DType::f32;
  size_t nbytes = 0;             // of the storage
  std::weak_ptr<Storage> last;  // the latest recomputation, shared while a node holds it
  // fn(inputs) without recording, unless `last` is still alive. Throws when the result
  // is laid out differently from the first.
  std::shared_ptr<Storage> storage();
};

}  // namespace ternion::autograd

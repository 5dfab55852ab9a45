// Public autograd API: marking leaves, running backward, no-grad scopes, hooks, and
// checkpointed (recomputed) sub-graphs.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "autograd/node.h"
#include "core/tensor.h"

namespace ternion::autograd {

// Leaves.
Tensor& set_requires_grad(Tensor& t, bool requires_grad = true);
bool requires_grad(const Tensor& t);
bool is_leaf(const Tensor& t);  // no grad_fn
// The accumulated gradient of a leaf (undefined before its first backward).
Tensor grad(const Tensor& t);
void zero_grad(Tensor& t);  // drops the gradient (next backward writes a fresh one)
// Makes `g` (same shape, dtype and device as the leaf t, which requires grad) t's gradient:
// backward then adds into g in place, so g may be a view of a larger buffer (ZeRO's and the
// data-parallel reducer's flat buffers). zero_grad drops it again.
void set_grad(Tensor& t, const Tensor& g);
// The node that produced t (null for leaves and tensors made without grad).
std::shared_ptr<Node> grad_fn(const Tensor& t);
// A tensor that shares t's data but has no history.
Tensor detach(const Tensor& t);

// Runs `hook(param)` every time backward has finished accumulating into param.grad
// (data-parallel bucketing starts each bucket's all-reduce from these).
void register_grad_ready_hook(Tensor& param, GradReadyHook hook);

// Reverse-mode sweep from `roots` with seed gradients (ones for a scalar root when
// `grads` is empty). Nodes run in reverse creation order among those ready; saved
// tensors are released after each node runs unless retain_graph.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {},
              bool retain_graph = false);
inline void backward(const Tensor& root) { backward(std::vector<Tensor>{root}); }

// Whether ops record the graph on this thread.
bool grad_enabled();
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};
// No recording inside this scope: `NoGrad guard;`.
struct NoGrad : GradModeGuard {
  NoGrad() : GradModeGuard(false) {}
};

// Activation checkpointing: runs fn(inputs) without recording, keeping only the inputs.
// During backward the engine re-runs fn with recording on and back-propagates through
// the recomputed graph (into the inputs and into any parameters fn uses). fn must be
// deterministic (dropout through the counter-based RNG is) so recomputation is exact.
// Tensors fn reads that are not among `inputs` (parameters, or activations from outside
// the region) get their gradients through the checkpoint's node as inputs do: a leaf's
// gradient is accumulated and its grad-ready hooks fire once per backward, after every
// use of it inside and outside the region has contributed.
using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs);

// Selective recomputation of one cheap tensor: returns y = fn(inputs), recorded as usual,
// but a node that saves y's storage for its backward (an op that takes y itself and
// keeps it or a view of it) keeps `inputs` instead, and y is recomputed by fn(inputs)
// without recording right before that node's backward runs. Meant for element-wise work
// whose inputs are kept anyway (a LayerNorm or GELU output that feeds a matmul). fn must
// be deterministic and return a fresh tensor laid out as the first time. y is returned
// unmarked when grad mode is off or when it shares storage with an input.
using RecomputeFn = std::function<Tensor(const std::vector<Tensor>&)>;
Tensor recomputable(const RecomputeFn& fn, const std::vector<Tensor>& inputs);

}  // namespace ternion::autograd

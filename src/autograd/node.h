// The recorded graph. Every differentiable op creates one Node per call holding what
// its backward needs; outputs point at it through AutogradMeta::grad_fn, and the node
// points at the nodes of its inputs through edges. Leaves that require grad get an
// AccumulateGrad node that adds into their .grad and fires their grad-ready hooks.
//
// A tensor made by recomputable() (autograd.h) carries a SavedRecipe: a node that saves
// its storage keeps the recipe (the function and its inputs) in that slot instead, and
// the engine recomputes the data right before the node's backward runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ternion::autograd {

class Node;
struct SavedRecipe;  // record.h

struct Edge {
  std::shared_ptr<Node> node;  // null: that input needs no gradient
  int input_nr = 0;            // which output of `node` the input was
};

using GradReadyHook = std::function<void(const Tensor& param)>;

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                             // leaves: accumulated gradient (+=)
  std::shared_ptr<Node> grad_fn;           // non-leaves: the node that made this tensor
  int output_nr = 0;                       // which output of grad_fn
  std::weak_ptr<Node> grad_accumulator;    // leaves: their AccumulateGrad, made lazily
  std::vector<GradReadyHook> ready_hooks;  // leaves: run after each accumulation
  std::shared_ptr<SavedRecipe> recipe;     // recomputable(): savers keep this, not the data
};

// Bytes of activations the graph holds for backward: distinct storages of saved tensors,
// parameters (leaves that require grad) excluded. Process-wide, like the allocator's
// statistics; the trainer reads the peak of each step for memory.json.
struct SavedStats {
  size_t bytes = 0;  // held now
  size_t peak = 0;   // high-water mark since the last reset_saved_peak()
};
SavedStats saved_stats();
void reset_saved_peak();

class Node : public std::enable_shared_from_this<Node> {
 public:
  virtual ~Node();
  virtual std::string_view name() const = 0;

  // grads[i] is d(loss)/d(output i) (the engine passes zeros for outputs that got no
  // gradient). Returns one gradient per edge, undefined where the edge needs none.
  virtual std::vector<Tensor> backward(std::vector<Tensor>& grads) = 0;

  const std::vector<Edge>& next_edges() const { return edges_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  int num_outputs() const { return static_cast<int>(output_shapes_.size()); }
  const Shape& output_shape(int i) const { return output_shapes_[i]; }
  DType output_dtype(int i) const { return output_dtypes_[i]; }
  Device output_device(int i) const { return output_devices_[i]; }
  // Saved tensors are dropped after the node's backward ran once (unless the engine
  // was asked to retain the graph).
  size_t num_saved() const { return saved_.size(); }
  void release_saved();
  // Recomputes the slots kept as recipes; the engine calls it right before backward.
  void restore_saved();

 protected:
  // Saves `t` for the backward and returns its slot.
  size_t save(const Tensor& t);
  const Tensor& saved(size_t slot) const;

 private:
  friend class NodeBuilder;
  // At connect: slots holding the storage of an input that carries a recipe keep the
  // recipe instead (its inputs join the saved tensors); then every saved tensor counts in
  // SavedStats until release.
  void keep_saved(const std::vector<Tensor>& inputs);
  std::vector<Edge> edges_;
  std::vector<Shape> output_shapes_;
  std::vector<DType> output_dtypes_;
  std::vector<Device> output_devices_;
  std::vector<Tensor> saved_;
  std::vector<std::pair<size_t, std::shared_ptr<SavedRecipe>>> recipes_;  // slots to restore
  bool counted_ = false;  // saved_ is in SavedStats
  uint64_t sequence_nr_ = 0;
};

// Adds incoming gradients into a leaf's .grad, then runs its grad-ready hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf);
  std::string_view name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override;
  // The leaf is held weakly: the graph must not keep parameters alive.
  std::weak_ptr<TensorImpl> leaf;
};

}  // namespace ternion::autograd

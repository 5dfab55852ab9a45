// Selective recomputation (autograd.h: recomputable). The tensor is computed and recorded
// as usual; only its savers change: NodeBuilder::connect gives them the recipe in place
// of the data (Node::keep_saved), and the engine restores it before their backward.
#include "autograd/autograd.h"
#include "autograd/record.h"

namespace ternion::autograd {

std::shared_ptr<Storage> SavedRecipe::storage() {
  if (auto s = last.lock()) return s;
  Tensor y;
  {
    NoGrad no_grad;
    y = fn(inputs);
  }
  TN_CHECK(y.defined() && y.impl_ptr()->storage && y.shape() == shape && y.strides() == strides &&
               y.offset() == offset && y.dtype() == dtype && y.impl_ptr()->storage->nbytes == nbytes,
           "recomputable", "the recomputation returned ", y.defined() ? y.str() : std::string("nothing"),
           " laid out unlike the first result ", dtype_name(dtype), shape_str(shape),
           "; the function must be deterministic and return a fresh tensor");
  last = y.impl_ptr()->storage;
  return y.impl_ptr()->storage;
}

Tensor recomputable(const RecomputeFn& fn, const std::vector<Tensor>& inputs) {
  Tensor y = fn(inputs);
  TN_CHECK(y.defined(), "recomputable", "the function returned an undefined tensor");
  if (!grad_enabled() || !y.impl_ptr()->storage) return y;
  for (const Tensor& in : inputs)
    if (in.defined() && in.impl_ptr()->storage == y.impl_ptr()->storage) return y;  // nothing to spare
  auto recipe = std::make_shared<SavedRecipe>();
  recipe->fn = fn;
  recipe->inputs = inputs;
  recipe->shape = y.shape();
  recipe->strides = y.strides();
  recipe->offset = y.offset();
  recipe->dtype = y.dtype();
  recipe->nbytes = y.impl_ptr()->storage->nbytes;
  auto& m = y.impl_ptr()->autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  m->recipe = std::move(recipe);
  return y;
}

}  // namespace ternion::autograd

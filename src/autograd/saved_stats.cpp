// Saved-tensor accounting (node.h: SavedStats) and the saved slots of a node. A storage
// counts once however many nodes save views of it, from the first saving node's connect
// until the last one releases it. A slot kept as a recipe counts the recipe's inputs
// instead, and its recomputed data only from restore_saved() to release.
#include <mutex>
#include <unordered_map>

#include "autograd/node.h"
#include "autograd/record.h"

namespace ternion::autograd {

namespace {

struct Tracker {
  std::mutex mu;
  std::unordered_map<const Storage*, size_t> refs;  // storage -> saved slots holding it
  SavedStats stats;
};

Tracker& tracker() {
  static Tracker t;
  return t;
}

// Parameters and tensors without storage are not activations.
const Storage* tracked_storage(const Tensor& t) {
  if (!t.defined() || !t.impl_ptr()->storage) return nullptr;
  const auto& m = t.impl_ptr()->autograd;
  if (m && m->requires_grad && !m->grad_fn) return nullptr;
  return t.impl_ptr()->storage.get();
}

void track(const Tensor& t, bool add) {
  // Release looks the storage up without re-judging it: only what was added is removed.
  const Storage* s = add ? tracked_storage(t) : (t.defined() ? t.impl_ptr()->storage.get() : nullptr);
  if (!s) return;
  Tracker& tr = tracker();
  std::lock_guard<std::mutex> lock(tr.mu);
  if (add) {
    if (tr.refs[s]++ == 0) {
      tr.stats.bytes += s->nbytes;
      tr.stats.peak = std::max(tr.stats.peak, tr.stats.bytes);
    }
    return;
  }
  auto it = tr.refs.find(s);
  if (it == tr.refs.end()) return;
  if (--it->second == 0) {
    tr.stats.bytes -= s->nbytes;
    tr.refs.erase(it);
  }
}

}  // namespace

SavedStats saved_stats() {
  Tracker& tr = tracker();
  std::lock_guard<std::mutex> lock(tr.mu);
  return tr.stats;
}

void reset_saved_peak() {
  Tracker& tr = tracker();
  std::lock_guard<std::mutex> lock(tr.mu);
  tr.stats.peak = tr.stats.bytes;
}

size_t Node::save(const Tensor& t) {
  saved_.push_back(t);
  if (counted_) track(t, true);
  return saved_.size() - 1;
}

void Node::keep_saved(const std::vector<Tensor>& inputs) {
  for (const Tensor& in : inputs) {
    const auto& m = in.defined() ? in.impl_ptr()->autograd : nullptr;
    if (!m || !m->recipe || !in.impl_ptr()->storage) continue;
    const Storage* s = in.impl_ptr()->storage.get();
    bool kept = false;
    for (size_t i = 0; i < saved_.size(); ++i) {
      if (!saved_[i].defined() || saved_[i].impl_ptr()->storage.get() != s) continue;
      auto layout = std::make_shared<TensorImpl>(*saved_[i].impl_ptr());  // the view, without its data
      layout->storage.reset();
      saved_[i] = Tensor(std::move(layout));
      recipes_.push_back({i, m->recipe});
      kept = true;
    }
    if (kept)
      for (const Tensor& t : m->recipe->inputs) saved_.push_back(t);
  }
  for (const Tensor& t : saved_) track(t, true);
  counted_ = true;
}

void Node::restore_saved() {
  for (auto& [slot, recipe] : recipes_) {
    saved_[slot].impl_ptr()->storage = recipe->storage();
    track(saved_[slot], true);
  }
  recipes_.clear();
}

void Node::release_saved() {
  if (counted_)
    for (const Tensor& t : saved_) track(t, false);
  saved_.clear();
  recipes_.clear();
}

Node::~Node() { release_saved(); }

}  // namespace ternion::autograd

// Saved-tensor accounting (node.h: SavedStats). A storage counts once however many nodes
// save views of it, from its first save until its last saving node releases it.
#include <mutex>
#include <unordered_map>

#include "autograd/node.h"

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
  track(t, true);
  return saved_.size() - 1;
}

void Node::release_saved() {
  for (const Tensor& t : saved_) track(t, false);
  saved_.clear();
}

Node::~Node() { release_saved(); }

}  // namespace ternion::autograd

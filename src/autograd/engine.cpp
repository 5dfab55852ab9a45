// The backward engine: dependency counting over the graph reachable from the roots, then
// a ready queue ordered by sequence number (latest-created first), as in PyTorch, so a
// model's last layers finish first and their gradient all-reduces can start early.
#include <atomic>
#include <queue>
#include <unordered_map>

#include "autograd/autograd.h"
#include "autograd/record.h"
#include "kernels/kernels.h"

namespace ternion::autograd {

namespace {

thread_local bool g_grad_enabled = true;
thread_local std::vector<Tensor>* g_used = nullptr;  // UsedTensorsScope
std::atomic<uint64_t> g_next_sequence_nr{0};

AutogradMeta* meta(const Tensor& t) { return t.defined() ? t.impl_ptr()->autograd.get() : nullptr; }

AutogradMeta& ensure_meta(const Tensor& t) {
  auto& m = t.impl_ptr()->autograd;
  if (!m) m = std::make_shared<AutogradMeta>();
  return *m;
}

std::shared_ptr<Node> accumulator_for(const Tensor& leaf) {
  AutogradMeta& m = ensure_meta(leaf);
  auto acc = m.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(leaf);
    NodeBuilder::init_accumulator(*acc, leaf);
    m.grad_accumulator = acc;
  }
  return acc;
}

Edge edge_for(const Tensor& t) {
  AutogradMeta* m = meta(t);
  if (!m || !m->requires_grad) return {};
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  return {accumulator_for(t), 0};
}

}  // namespace

// --- Node and NodeBuilder ---------------------------------------------------------

const Tensor& Node::saved(size_t slot) const {
  TN_CHECK(slot < saved_.size(), name(),
           "saved tensors were released: backward through this graph ran already "
           "(use retain_graph to run it twice)");
  return saved_[slot];
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) {
    if (g_used)
      for (const Tensor& t : inputs)
        if (AutogradMeta* m = meta(t); m && m->requires_grad) g_used->push_back(t);
    return false;
  }
  for (const Tensor& t : inputs)
    if (AutogradMeta* m = meta(t); m && m->requires_grad) return true;
  return false;
}

void NodeBuilder::connect(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                          const std::vector<Tensor>& outputs) {
  node->sequence_nr_ = g_next_sequence_nr++;
  node->edges_.reserve(inputs.size());
  for (const Tensor& t : inputs) node->edges_.push_back(edge_for(t));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->output_shapes_.push_back(out.shape());
    node->output_dtypes_.push_back(out.dtype());
    node->output_devices_.push_back(out.device());
    AutogradMeta& m = ensure_meta(out);
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = static_cast<int>(i);
  }
  node->keep_saved(inputs);
}

Edge gradient_edge(const Tensor& t) { return edge_for(t); }

UsedTensorsScope::UsedTensorsScope() : prev_(g_used) { g_used = &used; }
UsedTensorsScope::~UsedTensorsScope() { g_used = prev_; }

Tensor add_gradients(const Tensor& acc, const Tensor& g) {
  Tensor gc = g.contiguous();
  if (!acc.defined()) return gc;
  TN_CHECK(acc.shape() == gc.shape(), "backward", "gradient shapes disagree: ", acc.str(), " vs ",
           gc.str());
  Tensor out = Tensor::empty(acc.shape(), acc.dtype(), acc.device());
  TN_KERNEL(axpby, acc.device(), 1.0, acc, 1.0, gc, out);
  return out;
}

// --- AccumulateGrad -----------------------------------------------------------------

AccumulateGrad::AccumulateGrad(Tensor t) : leaf(t.impl_shared()) {}

void NodeBuilder::init_accumulator(Node& acc, const Tensor& leaf) {
  acc.sequence_nr_ = UINT64_MAX;  // run as soon as ready: gradients become final early
  acc.output_shapes_ = {leaf.shape()};
  acc.output_dtypes_ = {leaf.dtype()};
  acc.output_devices_ = {leaf.device()};
}

std::vector<Tensor> AccumulateGrad::backward(std::vector<Tensor>& grads) {
  auto impl = leaf.lock();
  if (!impl) return {};
  Tensor param(impl);
  AutogradMeta& m = ensure_meta(param);
  const Tensor& g = grads[0];
  TN_CHECK(g.shape() == param.shape(), "AccumulateGrad", "gradient ", g.str(), " for parameter ",
           param.str());
  if (!m.grad.defined()) {
    m.grad = g.contiguous().clone();  // never alias a gradient other nodes may hold
  } else {
    Tensor gc = g.contiguous();
    TN_KERNEL(axpby, m.grad.device(), 1.0, m.grad, 1.0, gc, m.grad);
  }
  for (auto& hook : m.ready_hooks) hook(param);
  return {};
}

// --- public API ------------------------------------------------------------------

Tensor& set_requires_grad(Tensor& t, bool rg) {
  TN_CHECK(!rg || is_floating(t.dtype()), "set_requires_grad", "only floating tensors can require grad, got ",
           t.str());
  TN_CHECK(is_leaf(t), "set_requires_grad", "only leaves can be marked; detach() first");
  ensure_meta(t).requires_grad = rg;
  return t;
}

bool requires_grad(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return m && m->requires_grad;
}

bool is_leaf(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return !m || !m->grad_fn;
}

Tensor grad(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return m ? m->grad : Tensor();
}

void set_grad(Tensor& t, const Tensor& g) {
  TN_CHECK(is_leaf(t) && requires_grad(t), "set_grad", "needs a leaf that requires grad, got ", t.str());
  TN_CHECK(g.defined() && g.shape() == t.shape() && g.dtype() == t.dtype() && g.device() == t.device() &&
               g.is_contiguous(),
           "set_grad", "the gradient must be a contiguous tensor like ", t.str(), ", got ",
           g.defined() ? g.str() : std::string("an undefined tensor"));
  ensure_meta(t).grad = g;
}

void zero_grad(Tensor& t) {
  if (AutogradMeta* m = meta(t)) m->grad = Tensor();
}

std::shared_ptr<Node> grad_fn(const Tensor& t) {
  AutogradMeta* m = meta(t);
  return m ? m->grad_fn : nullptr;
}

Tensor detach(const Tensor& t) {
  auto impl = std::make_shared<TensorImpl>(*t.impl_ptr());
  impl->autograd.reset();
  return Tensor(std::move(impl));
}

void register_grad_ready_hook(Tensor& param, GradReadyHook hook) {
  TN_CHECK(is_leaf(param) && requires_grad(param), "register_grad_ready_hook",
           "needs a leaf that requires grad, got ", param.str());
  ensure_meta(param).ready_hooks.push_back(std::move(hook));
}

bool grad_enabled() { return g_grad_enabled; }
GradModeGuard::GradModeGuard(bool enabled) : prev_(g_grad_enabled) { g_grad_enabled = enabled; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = prev_; }

namespace {

// backward() and backward_to(): the sweep, stopping at `targets` (none for backward()).
std::vector<Tensor> run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                                 bool retain_graph, const std::vector<Edge>& targets) {
  TN_CHECK(grads.empty() || grads.size() == roots.size(), "backward", roots.size(), " roots but ",
           grads.size(), " gradients");
  struct Pending {
    int deps = 0;
    std::vector<Tensor> inputs;  // gradient per output of the node
  };
  std::unordered_map<Node*, Pending> pending;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;
  // Target node -> (its output, index into the result) for each target edge on it.
  std::unordered_map<Node*, std::vector<std::pair<int, size_t>>> stops;
  for (size_t i = 0; i < targets.size(); ++i)
    if (targets[i].node) stops[targets[i].node.get()].push_back({targets[i].input_nr, i});
  std::vector<Tensor> captured(targets.size());

  // Dependency counts over everything reachable from the roots, up to the targets.
  std::vector<Edge> root_edges;
  for (const Tensor& r : roots) {
    Edge e = edge_for(r);
    TN_CHECK(e.node, "backward", "root ", r.str(), " does not require grad");
    root_edges.push_back(e);
  }
  std::vector<std::shared_ptr<Node>> stack;
  auto visit = [&](const std::shared_ptr<Node>& n) {
    if (!keep.emplace(n.get(), n).second) return;
    pending[n.get()].inputs.resize(n->num_outputs() ? n->num_outputs() : 1);
    if (!stops.count(n.get())) stack.push_back(n);
  };
  for (auto& e : root_edges) visit(e.node);
  while (!stack.empty()) {
    auto n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.node) continue;
      visit(e.node);
      pending[e.node.get()].deps++;
    }
  }

  // Seed the roots.
  for (size_t i = 0; i < roots.size(); ++i) {
    Tensor g;
    if (grads.empty() || !grads[i].defined()) {
      TN_CHECK(roots[i].numel() == 1, "backward", "implicit gradient needs a scalar root, got ",
               roots[i].str());
      g = Tensor::full(roots[i].shape(), 1.0, roots[i].dtype(), roots[i].device());
    } else {
      TN_CHECK(grads[i].shape() == roots[i].shape(), "backward", "seed gradient ", grads[i].str(),
               " for root ", roots[i].str());
      g = grads[i];
    }
    auto& slot = pending[root_edges[i].node.get()].inputs[root_edges[i].input_nr];
    slot = add_gradients(slot, g);
  }

  auto later_first = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
  for (auto& [node, p] : pending)
    if (p.deps == 0) ready.push(node);

  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    if (auto stop = stops.find(n); stop != stops.end()) {
      for (const auto& [output, index] : stop->second) captured[index] = pending[n].inputs[output];
      continue;
    }
    std::vector<Tensor> in = std::move(pending[n].inputs);
    for (int i = 0; i < n->num_outputs(); ++i)
      if (!in[i].defined())
        in[i] = Tensor::zeros(n->output_shape(i), n->output_dtype(i), n->output_device(i));
    n->restore_saved();
    std::vector<Tensor> out = n->backward(in);
    in.clear();
    if (!retain_graph) n->release_saved();
    const auto& edges = n->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.node) continue;
      Pending& p = pending[e.node.get()];
      if (i < out.size() && out[i].defined())
        p.inputs[e.input_nr] = add_gradients(p.inputs[e.input_nr], out[i]);
      if (--p.deps == 0) ready.push(e.node.get());
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  run_backward(roots, grads, retain_graph, {});
}

std::vector<Tensor> backward_to(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                                const std::vector<Edge>& targets) {
  return run_backward(roots, grads, /*retain_graph=*/false, targets);
}

}  // namespace ternion::autograd

#include "train/grad_sync.h"

#include <algorithm>
#include <chrono>

#include "autograd/autograd.h"
#include "parallel/data_parallel.h"

namespace ternion::train {

void sum_over_tp(parallel::Communicator& tp, const std::vector<Tensor>& grads) {
  if (tp.size() == 1 || grads.empty()) return;
  int64_t n = 0;
  for (const Tensor& g : grads) n += g.numel();
  Tensor flat = Tensor::empty({n}, grads[0].dtype(), grads[0].device());
  int64_t at = 0;
  for (const Tensor& g : grads) {
    flat.slice(0, at, at + g.numel()).copy_(g.contiguous().view({g.numel()}));
    at += g.numel();
  }
  tp.all_reduce(flat, parallel::ReduceOp::kSum);
  at = 0;
  for (const Tensor& g : grads) {
    Tensor dst = g;
    dst.copy_(flat.slice(0, at, at + g.numel()).view(g.shape()));
    at += g.numel();
  }
}

parallel::PowerSgdOptions powersgd_options(const Config& config) {
  const PowerSgdConfig& c = config.parallel.powersgd;
  parallel::PowerSgdOptions o;
  o.rank = std::max(c.rank, 1);
  o.min_compression_rate = c.min_compression_rate;
  o.warm_start = c.warm_start;
  o.error_feedback = c.error_feedback;
  o.orthogonalization_epsilon = c.orthogonalization_epsilon;
  return o;
}

std::unique_ptr<parallel::PowerSgd> make_powersgd(const Config& config, parallel::ParallelContext& ctx,
                                                  const model::Gpt& gpt, std::vector<std::vector<int>> groups) {
  const PowerSgdConfig& c = config.parallel.powersgd;
  if (c.rank == 0 || ctx.dp->size() == 1) return nullptr;  // nothing to send: nothing to compress
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  for (const auto& p : gpt.parameters()) {
    names.push_back(p.name);
    shapes.push_back(p.tensor.shape());
  }
  const Tensor& any = gpt.parameters().at(0).tensor;
  return std::make_unique<parallel::PowerSgd>(*ctx.dp, std::move(names), shapes, any.dtype(), any.device(),
                                              powersgd_options(config), static_cast<uint64_t>(config.run.seed),
                                              std::move(groups));
}

namespace {

// The parameters' gradients, a zero one made where backward reached none (every rank then
// sends the same tensors).
std::vector<Tensor> gradients_of(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    Tensor g = autograd::grad(p);
    if (!g.defined()) {
      Tensor leaf = p;
      autograd::set_grad(leaf, Tensor::zeros(p.shape(), p.dtype(), p.device()));
      g = autograd::grad(p);
    }
    grads.push_back(g);
  }
  return grads;
}

// Data parallelism: the bucketed all-reduce average over the dp group (or, with PowerSGD
// from its start step on, the compressed average in finish()); then, with pipeline stages,
// the tied embedding's two copies (first stage: wte, last stage: the head's copy) get the
// sum of their gradients over the embedding group, so they receive the same update and stay
// bit-identical; and with sequence parallelism the replicated parameters' partial gradients
// (each tp rank saw its own tokens) are summed over tp, in one all-reduce of their
// concatenation.
class DataParallelSync final : public GradSync {
 public:
  DataParallelSync(std::vector<Tensor> params, std::unique_ptr<parallel::GradReducer> reducer,
                   parallel::Communicator& embedding, Tensor tied, parallel::Communicator& tp,
                   std::vector<Tensor> tp_partial, std::unique_ptr<parallel::PowerSgd> powersgd, int64_t start_step)
      : params_(std::move(params)),
        reducer_(std::move(reducer)),
        embedding_(embedding),
        tied_(std::move(tied)),
        tp_(tp),
        tp_partial_(std::move(tp_partial)),
        start_step_(start_step),
        psgd_(std::make_shared<Compression>()) {
    // The bucketed reducer serves the steps before PowerSGD's start; from it on, PowerSGD
    // compresses group by group (the reducer's buckets) as the last backward finishes each.
    Compression& c = *psgd_;
    c.psgd = std::move(powersgd);
    if (!c.psgd) return;
    c.params = params_;
    c.group_of.assign(params_.size(), 0);
    for (size_t g = 0; g < c.psgd->num_groups(); ++g)
      for (const int i : c.psgd->group(g)) c.group_of[static_cast<size_t>(i)] = static_cast<int>(g);
    c.pending.resize(c.psgd->num_groups());
    std::weak_ptr<Compression> weak = psgd_;
    for (size_t i = 0; i < params_.size(); ++i)
      autograd::register_grad_ready_hook(params_[i], [weak, i](const Tensor&) {
        if (auto s = weak.lock()) s->on_ready(i);
      });
  }
  void begin_step(int64_t step) override { step_ = step; }
  void begin_backward(bool last) override {
    reducer_->begin_backward(last && !compressing());
    Compression& c = *psgd_;
    c.active = last && compressing();
    if (!c.active) return;
    c.psgd->begin();
    c.next = 0;
    for (size_t g = 0; g < c.pending.size(); ++g) c.pending[g] = static_cast<int>(c.psgd->group(g).size());
  }
  void finish() override {
    const auto t0 = std::chrono::steady_clock::now();
    if (compressing()) {
      Compression& c = *psgd_;
      TN_CHECK(c.active, "train", "finish() without a begin_backward(true) before the last backward");
      // Groups whose gradients the last backward did not all reach: what earlier
      // micro-batches accumulated, or zeros.
      while (c.next < c.pending.size()) c.launch(c.next++);
      c.psgd->end();
      c.active = false;
      wait_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    } else {
      reducer_->finish();
      wait_ms_ = reducer_->stats().wait_ms;
    }
    std::vector<Tensor> partial;
    for (const Tensor& p : tp_partial_) {
      Tensor g = autograd::grad(p);
      TN_CHECK(g.defined(), "train", "a sequence-parallel parameter got no gradient on this rank");
      partial.push_back(g);
    }
    sum_over_tp(tp_, partial);
    if (embedding_.size() == 1 || !tied_.defined()) return;
    Tensor g = autograd::grad(tied_);
    TN_CHECK(g.defined(), "train", "the tied embedding got no gradient on this stage");
    embedding_.all_reduce(g, parallel::ReduceOp::kSum);
  }
  double wait_ms() const override { return wait_ms_; }
  parallel::PowerSgd* powersgd() override { return psgd_->psgd.get(); }

 private:
  // PowerSGD's state shared with the parameters' grad-ready hooks.
  struct Compression {
    std::unique_ptr<parallel::PowerSgd> psgd;
    std::vector<Tensor> params;
    std::vector<int> group_of;  // each parameter's group
    std::vector<int> pending;   // per group: gradients the last backward has not finished
    size_t next = 0;            // the next group to launch (in order, on every rank alike)
    bool active = false;        // in a compressed step's last backward
    void launch(size_t g) {
      std::vector<Tensor> group;
      for (const int i : psgd->group(g)) group.push_back(params[static_cast<size_t>(i)]);
      psgd->launch(g, gradients_of(group));
    }
    void on_ready(size_t i) {
      if (!active) return;
      --pending[static_cast<size_t>(group_of[i])];
      while (next < pending.size() && pending[next] == 0) launch(next++);
    }
  };
  bool compressing() const { return psgd_->psgd && step_ >= start_step_; }

  std::vector<Tensor> params_;
  std::unique_ptr<parallel::GradReducer> reducer_;
  parallel::Communicator& embedding_;
  Tensor tied_;
  parallel::Communicator& tp_;
  std::vector<Tensor> tp_partial_;
  int64_t start_step_ = 0, step_ = 0;
  std::shared_ptr<Compression> psgd_;
  double wait_ms_ = 0;
};

}  // namespace

std::unique_ptr<GradSync> make_grad_sync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt) {
  std::vector<Tensor> params;
  Tensor tied;  // this stage's copy of the tied embedding, when the embedding group spans stages
  std::vector<Tensor> tp_partial;
  for (auto& p : gpt.parameters()) {
    params.push_back(p.tensor);
    if (p.grad_summed_over_tp) tp_partial.push_back(p.tensor);
    if (p.name == "transformer.wte.weight") tied = p.tensor;
  }
  auto reducer = std::make_unique<parallel::GradReducer>(*ctx.dp, params, config.parallel.bucket_mb);
  // PowerSGD's groups are the reducer's buckets (filled in reverse parameter order).
  std::vector<std::vector<int>> groups;
  const std::vector<int> bucket = reducer->bucket_of_params();
  for (int i = static_cast<int>(params.size()) - 1; i >= 0; --i) {
    const size_t b = static_cast<size_t>(bucket[static_cast<size_t>(i)]);
    if (groups.size() <= b) groups.resize(b + 1);
    groups[b].push_back(i);
  }
  auto powersgd = make_powersgd(config, ctx, gpt, std::move(groups));
  return std::make_unique<DataParallelSync>(std::move(params), std::move(reducer), *ctx.embedding, tied, *ctx.tp,
                                            std::move(tp_partial), std::move(powersgd),
                                            config.parallel.powersgd.start_step);
}

}  // namespace ternion::train

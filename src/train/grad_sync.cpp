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
                                                  const model::Gpt& gpt) {
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
                                              powersgd_options(config), static_cast<uint64_t>(config.run.seed));
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
  DataParallelSync(parallel::Communicator& dp, std::vector<Tensor> params, double bucket_mb,
                   parallel::Communicator& embedding, Tensor tied, parallel::Communicator& tp,
                   std::vector<Tensor> tp_partial, std::unique_ptr<parallel::PowerSgd> powersgd, int64_t start_step)
      : params_(params),
        embedding_(embedding),
        tied_(std::move(tied)),
        tp_(tp),
        tp_partial_(std::move(tp_partial)),
        powersgd_(std::move(powersgd)),
        start_step_(start_step) {
    // PowerSGD sends everything from finish(); the bucketed reducer serves the other steps.
    reducer_ = std::make_unique<parallel::GradReducer>(dp, std::move(params), bucket_mb);
  }
  void begin_step(int64_t step) override { step_ = step; }
  void begin_backward(bool last) override { reducer_->begin_backward(last && !compressing()); }
  void finish() override {
    const auto t0 = std::chrono::steady_clock::now();
    if (compressing()) {
      powersgd_->reduce(gradients_of(params_));
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
  parallel::PowerSgd* powersgd() override { return powersgd_.get(); }

 private:
  bool compressing() const { return powersgd_ && step_ >= start_step_; }

  std::vector<Tensor> params_;
  std::unique_ptr<parallel::GradReducer> reducer_;
  parallel::Communicator& embedding_;
  Tensor tied_;
  parallel::Communicator& tp_;
  std::vector<Tensor> tp_partial_;
  std::unique_ptr<parallel::PowerSgd> powersgd_;
  int64_t start_step_ = 0, step_ = 0;
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
  return std::make_unique<DataParallelSync>(*ctx.dp, std::move(params), config.parallel.bucket_mb, *ctx.embedding,
                                            tied, *ctx.tp, std::move(tp_partial), make_powersgd(config, ctx, gpt),
                                            config.parallel.powersgd.start_step);
}

}  // namespace ternion::train

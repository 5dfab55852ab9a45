#include "train/grad_sync.h"

#include "autograd/autograd.h"
#include "parallel/data_parallel.h"

namespace ternion::train {

namespace {

// Data parallelism: the bucketed all-reduce average over the dp group; then, with
// pipeline stages, the tied embedding's two copies (first stage: wte, last stage: the
// head's copy) get the sum of their gradients over the embedding group, so they receive
// the same update and stay bit-identical; and with sequence parallelism the replicated
// parameters' partial gradients (each tp rank saw its own tokens) are summed over tp, in
// one all-reduce of their concatenation.
class DataParallelSync final : public GradSync {
 public:
  DataParallelSync(parallel::Communicator& dp, std::vector<Tensor> params, double bucket_mb,
                   parallel::Communicator& embedding, Tensor tied, parallel::Communicator& tp,
                   std::vector<Tensor> tp_partial)
      : reducer_(dp, std::move(params), bucket_mb),
        embedding_(embedding),
        tied_(std::move(tied)),
        tp_(tp),
        tp_partial_(std::move(tp_partial)) {}
  void begin_backward(bool last) override { reducer_.begin_backward(last); }
  void finish() override {
    reducer_.finish();
    sum_over_tp();
    if (embedding_.size() == 1 || !tied_.defined()) return;
    Tensor g = autograd::grad(tied_);
    TN_CHECK(g.defined(), "train", "the tied embedding got no gradient on this stage");
    embedding_.all_reduce(g, parallel::ReduceOp::kSum);
  }
  double wait_ms() const override { return reducer_.stats().wait_ms; }

 private:
  void sum_over_tp() {
    if (tp_.size() == 1 || tp_partial_.empty()) return;
    std::vector<Tensor> grads;
    int64_t n = 0;
    for (const Tensor& p : tp_partial_) {
      Tensor g = autograd::grad(p);
      TN_CHECK(g.defined(), "train", "a sequence-parallel parameter got no gradient on this rank");
      grads.push_back(g);
      n += g.numel();
    }
    Tensor flat = Tensor::empty({n}, grads[0].dtype(), grads[0].device());
    int64_t at = 0;
    for (const Tensor& g : grads) {
      flat.slice(0, at, at + g.numel()).copy_(g.contiguous().view({g.numel()}));
      at += g.numel();
    }
    tp_.all_reduce(flat, parallel::ReduceOp::kSum);
    at = 0;
    for (Tensor& g : grads) {
      Tensor dst = g;
      dst.copy_(flat.slice(0, at, at + g.numel()).view(g.shape()));
      at += g.numel();
    }
  }

  parallel::GradReducer reducer_;
  parallel::Communicator& embedding_;
  Tensor tied_;
  parallel::Communicator& tp_;
  std::vector<Tensor> tp_partial_;
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
                                            tied, *ctx.tp, std::move(tp_partial));
}

}  // namespace ternion::train

#include "train/grad_sync.h"

#include "autograd/autograd.h"
#include "parallel/data_parallel.h"

namespace ternion::train {

namespace {

// Data parallelism: the bucketed all-reduce average over the dp group; then, with
// pipeline stages, the tied embedding's two copies (first stage: wte, last stage: the
// head's copy) get the sum of their gradients over the embedding group, so they receive
// the same update and stay bit-identical.
class DataParallelSync final : public GradSync {
 public:
  DataParallelSync(parallel::Communicator& dp, std::vector<Tensor> params, double bucket_mb,
                   parallel::Communicator& embedding, Tensor tied)
      : reducer_(dp, std::move(params), bucket_mb), embedding_(embedding), tied_(std::move(tied)) {}
  void begin_backward(bool last) override { reducer_.begin_backward(last); }
  void finish() override {
    reducer_.finish();
    if (embedding_.size() == 1 || !tied_.defined()) return;
    Tensor g = autograd::grad(tied_);
    TN_CHECK(g.defined(), "train", "the tied embedding got no gradient on this stage");
    embedding_.all_reduce(g, parallel::ReduceOp::kSum);
  }
  double wait_ms() const override { return reducer_.stats().wait_ms; }

 private:
  parallel::GradReducer reducer_;
  parallel::Communicator& embedding_;
  Tensor tied_;
};

}  // namespace

std::unique_ptr<GradSync> make_grad_sync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt) {
  std::vector<Tensor> params;
  Tensor tied;  // this stage's copy of the tied embedding, when the embedding group spans stages
  for (auto& p : gpt.parameters()) {
    params.push_back(p.tensor);
    if (p.name == "transformer.wte.weight") tied = p.tensor;
  }
  return std::make_unique<DataParallelSync>(*ctx.dp, std::move(params), config.parallel.bucket_mb, *ctx.embedding,
                                            tied);
}

}  // namespace ternion::train

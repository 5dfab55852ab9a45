#include "train/grad_sync.h"

#include "parallel/data_parallel.h"

namespace ternion::train {

namespace {

// Data parallelism: the bucketed all-reduce average over the dp group.
class DataParallelSync final : public GradSync {
 public:
  DataParallelSync(parallel::Communicator& dp, std::vector<Tensor> params, double bucket_mb)
      : reducer_(dp, std::move(params), bucket_mb) {}
  void begin_backward(bool last) override { reducer_.begin_backward(last); }
  void finish() override { reducer_.finish(); }
  double wait_ms() const override { return reducer_.stats().wait_ms; }

 private:
  parallel::GradReducer reducer_;
};

}  // namespace

std::unique_ptr<GradSync> make_grad_sync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt) {
  std::vector<Tensor> params;
  for (auto& p : gpt.parameters()) params.push_back(p.tensor);
  return std::make_unique<DataParallelSync>(*ctx.dp, std::move(params), config.parallel.bucket_mb);
}

}  // namespace ternion::train

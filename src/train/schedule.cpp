#include "train/schedule.h"

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ternion::train {

BatchBuffer::BatchBuffer(int64_t rows, int64_t T, Device device)
    : idx(Tensor::empty({rows, T}, DType::i32)), tgt(Tensor::empty({rows, T}, DType::i32)),
      dev_idx(device.is_cpu() ? idx : Tensor::empty({rows, T}, DType::i32, device)),
      dev_tgt(device.is_cpu() ? tgt : Tensor::empty({rows, T}, DType::i32, device)) {}

void BatchBuffer::upload() {
  if (dev_idx.raw_data() == idx.raw_data()) return;
  dev_idx.copy_(idx);
  dev_tgt.copy_(tgt);
}

SequentialSchedule::SequentialSchedule(const model::Gpt& gpt, data::BatchSampler& sampler, int64_t micro_batch_size)
    : gpt_(gpt), sampler_(sampler), buf_(micro_batch_size, gpt.config().block_size, gpt.config().device) {
  TN_CHECK(gpt.holds_all_layers(), "train", "the sequential schedule runs every layer; this rank holds a pipeline stage");
}

double SequentialSchedule::run(const StepWork& w, GradSync& sync) {
  TN_CHECK(w.micro_batch_size == buf_.idx.size(0), "train", "micro-batch size ", w.micro_batch_size,
           " differs from the schedule's ", buf_.idx.size(0));
  double loss_sum = 0;
  for (int64_t micro = 0; micro < w.micro_batches; ++micro) {
    const int64_t first = w.first_sample + micro * w.micro_batch_size;
    sampler_.fill(w.step, first, w.micro_batch_size, buf_.idx.data<int32_t>(), buf_.tgt.data<int32_t>());
    buf_.upload();
    Tensor loss = gpt_.loss(buf_.dev_idx, buf_.dev_tgt, w.dropout_key, static_cast<uint64_t>(w.step), first);
    loss_sum += loss.item();
    sync.begin_backward(micro + 1 == w.micro_batches);
    // loss_scale is 1 without loss scaling: the gradient of the mean over micro-batches.
    autograd::backward(autograd::scale(loss, w.loss_scale / static_cast<double>(w.micro_batches)));
  }
  sync.finish();
  return loss_sum / static_cast<double>(w.micro_batches);
}

double SequentialSchedule::evaluate(data::BatchSampler& val, int64_t batches, const StepWork& w,
                                    parallel::Communicator& dp) {
  autograd::NoGrad no_grad;
  const model::Gpt& gpt = gpt_;
  BatchBuffer& buf = buf_;
  double total = 0;
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t micro = 0; micro < w.micro_batches; ++micro) {
      val.fill(b, w.first_sample + micro * w.micro_batch_size, w.micro_batch_size, buf.idx.data<int32_t>(),
               buf.tgt.data<int32_t>());
      buf.upload();
      total += gpt.loss(buf.dev_idx, buf.dev_tgt).item();
    }
  }
  const double micro_batches = static_cast<double>(batches * w.micro_batches * dp.size());
  return dp.all_reduce_scalar(total, parallel::ReduceOp::kSum) / micro_batches;
}

}  // namespace ternion::train

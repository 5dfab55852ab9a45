#include "train/pipeline.h"

#include <algorithm>
#include <chrono>

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ternion::train {

using parallel::Action;
using parallel::ActionKind;

PipelineSchedule::PipelineSchedule(parallel::Schedule kind, const model::Gpt& gpt, data::BatchSampler& sampler,
                                   parallel::Communicator& pp, int64_t micro_batch_size)
    : kind_(kind),
      gpt_(gpt),
      sampler_(sampler),
      pp_(pp),
      buf_(micro_batch_size, gpt.config().block_size, gpt.config().device) {
  const bool first = pp.rank() == 0, last = pp.rank() == pp.size() - 1;
  TN_CHECK(gpt.shard().embeddings == first && gpt.shard().head == last, "train",
           "pipeline stage ", pp.rank(), " of ", pp.size(), " holds a shard that does not fit it");
  TN_CHECK(kind == parallel::Schedule::kInterleaved || gpt.shard().chunks == 1, "train", "the ",
           parallel::schedule_name(kind), " schedule runs one chunk per stage; this stage holds ", gpt.shard().chunks);
}

bool PipelineSchedule::first_virtual(int chunk) const { return gpt_.shard().embeddings && chunk == 0; }
bool PipelineSchedule::last_virtual(int chunk) const {
  return gpt_.shard().head && chunk == gpt_.shard().chunks - 1;
}

Tensor PipelineSchedule::activation_buffer() const {
  const auto& c = gpt_.config();
  // [B,T,C], or this tp rank's tokens with sequence parallelism: a stage sends and receives
  // only its own tp rank's part, to and from the same tp rank of its neighbours.
  return Tensor::empty(gpt_.activation_shape(buf_.idx.size(0), c.block_size), c.compute_dtype, c.device);
}

void PipelineSchedule::forward(const StepWork& w, int mb, int chunk, InFlight& f, double& loss_sum) {
  const int64_t first_sample = w.first_sample + mb * w.micro_batch_size;
  const model::DropoutContext d{w.dropout_key, static_cast<uint64_t>(w.step), first_sample, true};
  const bool first = first_virtual(chunk), last = last_virtual(chunk);
  if (first || last) {
    const auto& c = gpt_.config();
    f.batch = std::make_unique<BatchBuffer>(w.micro_batch_size, c.block_size, c.device);
    sampler_.fill(w.step, first_sample, w.micro_batch_size, f.batch->idx.data<int32_t>(),
                  f.batch->tgt.data<int32_t>());
    f.batch->upload();
  }
  Tensor x = first ? gpt_.embed(f.batch->dev_idx, d) : f.input;
  Tensor y = gpt_.blocks(x, d, gpt_.config().block_size, chunk);
  if (last) {
    f.output = gpt_.head_loss(y, f.batch->dev_tgt);
    loss_sum += f.output.item();
  } else {
    f.output = y;
  }
}

void PipelineSchedule::backward(const StepWork& w, int chunk, InFlight& f, bool last_backward, GradSync& sync) {
  sync.begin_backward(last_backward);
  if (last_virtual(chunk)) {
    autograd::backward(autograd::scale(f.output, w.loss_scale / static_cast<double>(w.micro_batches)));
  } else {
    autograd::backward({f.output}, {f.grad_in});
  }
  f.output = Tensor();
  f.grad_in = Tensor();
}

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

double PipelineSchedule::run(const StepWork& w, GradSync& sync) {
  const auto t0 = Clock::now();
  compute_s_ = 0;
  const int p = pp_.size(), s = pp_.rank(), m = static_cast<int>(w.micro_batches);
  const int v = static_cast<int>(gpt_.shard().chunks);
  const std::vector<Action> actions = parallel::pipeline_schedule(kind_, p, m, v, s);
  int last_backward = -1;
  for (size_t i = 0; i < actions.size(); ++i)
    if (actions[i].kind == ActionKind::kBackward) last_backward = static_cast<int>(i);
  std::map<std::pair<int, int>, InFlight> flight;  // by (micro-batch, chunk)
  double loss_sum = 0;
  peak_held_ = 0;
  std::vector<parallel::P2POp> group;
  // Tensors a group sends must live until it completes.
  std::vector<Tensor> keep;
  const auto flush = [&] {
    if (group.empty()) return;
    if (auto work = pp_.exchange(group)) work->wait();
    group.clear();
    keep.clear();
  };
  for (size_t i = 0; i < actions.size(); ++i) {
    const Action& a = actions[i];
    const std::pair<int, int> key{a.micro_batch, a.chunk};
    InFlight& f = flight[key];
    switch (a.kind) {
      case ActionKind::kRecvActivation:
        f.input = activation_buffer();
        group.push_back({parallel::P2POp::Kind::kRecv, f.input, a.peer_stage, 0});
        break;
      case ActionKind::kRecvGrad:
        f.grad_in = activation_buffer();
        group.push_back({parallel::P2POp::Kind::kRecv, f.grad_in, a.peer_stage, 1});
        break;
      case ActionKind::kSendActivation:
        keep.push_back(autograd::detach(f.output).contiguous());
        group.push_back({parallel::P2POp::Kind::kSend, keep.back(), a.peer_stage, 0});
        break;
      case ActionKind::kSendGrad: {
        keep.push_back(autograd::grad(f.input).contiguous());
        group.push_back({parallel::P2POp::Kind::kSend, keep.back(), a.peer_stage, 1});
        break;
      }
      case ActionKind::kForward:
        flush();
        if (f.input.defined()) autograd::set_requires_grad(f.input);
        {
          const auto c0 = Clock::now();
          forward(w, a.micro_batch, a.chunk, f, loss_sum);
          compute_s_ += seconds_since(c0);
        }
        peak_held_ = std::max(peak_held_, static_cast<int>(std::count_if(
                                              flight.begin(), flight.end(),
                                              [](const auto& e) { return e.second.output.defined(); })));
        break;
      case ActionKind::kBackward:
        flush();
        {
          const auto c0 = Clock::now();
          backward(w, a.chunk, f, static_cast<int>(i) == last_backward, sync);
          compute_s_ += seconds_since(c0);
        }
        break;
    }
    // A (micro-batch, chunk) is done on this stage after its backward (virtual stage 0) or
    // once its input's gradient is in the group that sends it (`keep` holds that tensor).
    if (a.kind == ActionKind::kSendGrad || (a.kind == ActionKind::kBackward && first_virtual(a.chunk)))
      flight.erase(key);
  }
  flush();
  idle_fraction_ = 1.0 - compute_s_ / std::max(seconds_since(t0), 1e-9);
  sync.finish();
  // The loss lives on the last stage; every stage reports it.
  const double mine = gpt_.shard().head ? loss_sum / static_cast<double>(m) : 0.0;  // the last chunk's
  return pp_.all_reduce_scalar(mine, parallel::ReduceOp::kSum);
}

double PipelineSchedule::evaluate(data::BatchSampler& val, int64_t batches, const StepWork& w,
                                  parallel::Communicator& dp) {
  autograd::NoGrad no_grad;
  const bool first = gpt_.shard().embeddings, last = gpt_.shard().head;
  const int s = pp_.rank(), p = pp_.size(), v = static_cast<int>(gpt_.shard().chunks);
  double total = 0;
  // Virtual stage by virtual stage along the chain (stage p-1's chunk c feeds stage 0's
  // chunk c+1): one message moves at a time, so plain sends and receives cannot deadlock.
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t micro = 0; micro < w.micro_batches; ++micro) {
      if (first || last) {
        val.fill(b, w.first_sample + micro * w.micro_batch_size, w.micro_batch_size, buf_.idx.data<int32_t>(),
                 buf_.tgt.data<int32_t>());
        buf_.upload();
      }
      for (int chunk = 0; chunk < v; ++chunk) {
        Tensor x;
        if (first_virtual(chunk)) {
          x = gpt_.embed(buf_.dev_idx);
        } else {
          x = activation_buffer();
          pp_.recv(x, (s - 1 + p) % p, 2);
        }
        Tensor y = gpt_.blocks(x, {}, gpt_.config().block_size, chunk);
        if (last_virtual(chunk)) {
          total += gpt_.head_loss(y, buf_.dev_tgt).item();
        } else {
          Tensor out = y.contiguous();
          pp_.send(out, (s + 1) % p, 2);
        }
      }
    }
  }
  total = pp_.all_reduce_scalar(last ? total : 0.0, parallel::ReduceOp::kSum);
  const double micro_batches = static_cast<double>(batches * w.micro_batches * dp.size());
  return dp.all_reduce_scalar(total, parallel::ReduceOp::kSum) / micro_batches;
}

std::unique_ptr<Schedule> make_schedule(const Config& config, parallel::ParallelContext& ctx, const model::Gpt& gpt,
                                        data::BatchSampler& sampler) {
  if (ctx.layout.pp == 1) return std::make_unique<SequentialSchedule>(gpt, sampler, config.train.micro_batch_size);
  return std::make_unique<PipelineSchedule>(parallel::parse_schedule(config.parallel.pp_schedule), gpt, sampler,
                                            *ctx.pp, config.train.micro_batch_size);
}

}  // namespace ternion::train

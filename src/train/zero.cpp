#include "train/zero.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "autograd/autograd.h"
#include "core/error.h"
#include "kernels/kernels.h"

namespace ternion::train {

namespace {

Storage& storage_of(const Tensor& t) { return *t.impl_shared()->storage; }

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

constexpr const char* kTied = "transformer.wte.weight";

}  // namespace

std::vector<int> zero_bucket_groups(const model::Gpt& gpt) {
  const auto& params = gpt.parameters();
  const auto& regions = gpt.regions();
  std::vector<int> group(params.size(), -1);
  for (size_t r = 0; r < regions.size(); ++r)
    for (const int i : regions[r])
      if (params[static_cast<size_t>(i)].name != kTied) group[static_cast<size_t>(i)] = static_cast<int>(r);
  return group;
}

int64_t zero_bucket_elements(const Config& config) {
  return std::max<int64_t>(1, static_cast<int64_t>(config.parallel.bucket_mb * 1024 * 1024 / 4.0));
}

struct ZeroSync::Bucket {
  int params = 0;   // parameters in the bucket
  int pending = 0;  // of them, those whose gradient this backward has not finished
  int64_t shard_begin = 0, shard_size = 0;
  Tensor shard_grad;  // stage 1: a view of the flat gradient buffer's range; 2, 3: its own buffer
  Tensor master;      // stage 3: this rank's range of the parameters, the only lasting copy
  Tensor received;    // a reduce-scatter's output while it is in flight
  Tensor half, half_full;  // stage 3 under 16-bit precision: the gather's input and output
  std::unique_ptr<parallel::Work> reduce, gather;
  bool launched = false;     // in this backward (stage 1: in this step's last backward)
  bool grads_live = true;    // the flat gradient buffer is allocated (always below stage 2)
  bool params_live = true;   // the flat parameter buffer is allocated (always below stage 3)
  bool in_backward = false;  // stage 3: its region's backward has begun, its gradient is not yet out
};

ZeroSync::ZeroSync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt)
    : stage_(config.parallel.zero_stage), ctx_(ctx), gpt_(gpt), prefetch_(config.parallel.zero_prefetch) {
  TN_CHECK(stage_ >= 1 && stage_ <= 3, "zero", "parallel.zero_stage = ", stage_, " is not 1, 2 or 3");
  if (config.precision == "bf16") gather_dtype_ = DType::bf16;
  if (config.precision == "fp16") gather_dtype_ = DType::f16;
  auto& params = gpt.parameters();
  const auto& regions = gpt.regions();
  // Buckets never mix regions (stage 3 gathers a region's buckets), and the tied embedding
  // has a bucket of its own (the same on the first and the last pipeline stage).
  std::vector<Tensor*> ptrs;
  for (auto& p : params) ptrs.push_back(&p.tensor);
  const DType dtype = params.at(0).tensor.dtype();
  const Device device = params.at(0).tensor.device();
  TN_CHECK(dtype == DType::f32, "zero", "the f32 master parameters go into the flat buffers, got ", dtype_name(dtype));
  buffers_ = std::make_unique<parallel::FlatBuffers>(ptrs, zero_bucket_elements(config), ctx.dp->size(),
                                                     zero_bucket_groups(gpt));
  const parallel::FlatLayout& L = buffers_->layout();
  const int rank = ctx.dp->rank();
  buckets_ = std::vector<Bucket>(L.buckets().size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& B = buckets_[b];
    const int bi = static_cast<int>(b);
    B.params = static_cast<int>(L.buckets()[b].params.size());
    B.shard_begin = L.shard_begin(bi, rank);
    B.shard_size = L.shard_size(bi);
    const int64_t sb = B.shard_begin, se = sb + B.shard_size;
    if (stage_ == 1) {
      B.shard_grad = buffers_->grads(bi).slice(0, sb, se);
    } else {
      B.shard_grad = Tensor::zeros({B.shard_size}, dtype, device);
      storage_of(buffers_->grads(bi)).release();
      B.grads_live = false;
    }
    if (stage_ == 3) {
      B.master = buffers_->params(bi).slice(0, sb, se).clone();
      storage_of(buffers_->params(bi)).release();
      B.params_live = false;
    }
    for (const parallel::FlatSegment& s : L.shard_pieces(bi, rank)) {
      pieces_.push_back({s.param, bi, s.param_offset, s.numel});
    }
  }
  for (const auto& region : regions) {
    std::set<int> bs;
    for (const int i : region) bs.insert(L.bucket_of(i));
    region_buckets_.emplace_back(bs.begin(), bs.end());
  }
  if (ctx.embedding->size() > 1)
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i].name == kTied) tied_bucket_ = L.bucket_of(static_cast<int>(i));
  for (size_t k = 0; k < params.size(); ++k)
    autograd::register_grad_ready_hook(params[k].tensor, [this, k](const Tensor&) { on_grad_ready(static_cast<int>(k)); });
  if (stage_ >= 2) gpt_.set_parameter_hooks(this);
  const std::vector<optim::ParamRef> refs = param_refs();
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (params[static_cast<size_t>(pieces_[i].param)].grad_summed_over_tp) tp_summed_grads_.push_back(refs[i].grad);
  powersgd_ = make_powersgd(config, ctx, gpt);
  powersgd_start_ = config.parallel.powersgd.start_step;
}

ZeroSync::~ZeroSync() {
  gpt_.set_parameter_hooks(nullptr);
  for (Bucket& B : buckets_) {  // nothing may still write into the buffers
    if (B.reduce) B.reduce->wait();
    if (B.gather) B.gather->wait();
  }
}

std::vector<optim::ParamRef> ZeroSync::param_refs() const {
  const auto& params = gpt_.parameters();
  std::vector<optim::ParamRef> refs;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& pc = pieces_[i];
    const model::Parameter& p = params[static_cast<size_t>(pc.param)];
    const Bucket& B = buckets_[static_cast<size_t>(pc.bucket)];
    const int64_t at = layout().segment_of(pc.param).offset + pc.param_offset - B.shard_begin;
    refs.push_back({p.name, piece_values(i), p.weight_decay, p.primary, B.shard_grad.slice(0, at, at + pc.numel)});
  }
  return refs;
}

Tensor ZeroSync::piece_values(size_t i) const {
  const Piece& pc = pieces_.at(i);
  const Bucket& B = buckets_[static_cast<size_t>(pc.bucket)];
  const int64_t at = layout().segment_of(pc.param).offset + pc.param_offset;
  if (stage_ == 3) return B.master.slice(0, at - B.shard_begin, at - B.shard_begin + pc.numel);
  return buffers_->params(pc.bucket).slice(0, at, at + pc.numel);
}

int64_t ZeroSync::param_bytes() const {
  int64_t n = 0;
  for (size_t b = 0; b < buckets_.size(); ++b)
    n += static_cast<int64_t>(stage_ == 3 ? buckets_[b].master.nbytes()
                                          : buffers_->params(static_cast<int>(b)).nbytes());
  return n;
}

int64_t ZeroSync::grad_bytes() const {
  int64_t n = 0;
  for (size_t b = 0; b < buckets_.size(); ++b)
    n += static_cast<int64_t>(stage_ == 1 ? buffers_->grads(static_cast<int>(b)).nbytes()
                                          : buckets_[b].shard_grad.nbytes());
  return n;
}

void ZeroSync::zero_grads() {
  wait_ms_ = 0;
  if (stage_ == 1) {
    buffers_->zero_grads();
    return;
  }
  for (Bucket& B : buckets_) B.shard_grad.fill_(0.0);
}

void ZeroSync::begin_backward(bool last) {
  last_ = last;
  launched_in_backward_ = 0;
  for (Bucket& B : buckets_) {
    B.pending = B.params;
    if (stage_ >= 2 || last) B.launched = false;
  }
}

void ZeroSync::on_grad_ready(int param) {
  if (stage_ == 1 && (!last_ || compressing())) return;  // stage 1 keeps the full gradient until finish()
  const int b = layout().bucket_of(param);
  Bucket& B = buckets_[static_cast<size_t>(b)];
  TN_CHECK(B.pending > 0, "zero", "parameter ", gpt_.parameters()[static_cast<size_t>(param)].name,
           " became ready twice in one backward (call begin_backward before each)");
  if (--B.pending == 0 && !B.launched) {
    if (compressing()) {
      // Stages 2 and 3 in a compressed step: the gradient stays whole for the compressor in
      // finish(); stage 3's parameters go once the bucket's backward is over.
      if (stage_ == 3) {
        B.in_backward = false;
        release_params(b);
      }
    } else {
      launch(b);
      // The backward's last bucket: its reduce-scatters finish before the next micro-batch's
      // forward, whose activations then never share memory with this one's full gradients.
      if (stage_ >= 2 && ++launched_in_backward_ == static_cast<int>(buckets_.size()))
        while (!in_flight_.empty()) complete(in_flight_.front());
    }
  }
  poll();
}

void ZeroSync::launch(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  TN_CHECK(B.grads_live, "zero", "bucket ", b, " has no gradient buffer to reduce");
  B.launched = true;
  // Stages 2 and 3: at most kMaxInFlight reduce-scatters at once, so a backward holds the
  // full gradients of a few buckets, never the whole gradient (DeepSpeed's reduce buckets).
  if (stage_ >= 2)
    while (static_cast<int>(in_flight_.size()) >= kMaxInFlight) complete(in_flight_.front());
  Tensor& full = buffers_->grads(b);
  B.received = Tensor::empty({B.shard_size}, full.dtype(), full.device());
  B.reduce = ctx_.dp->reduce_scatter_async(full, B.received, parallel::ReduceOp::kAvg);
  in_flight_.push_back(b);
  // Stage 3: the bucket's backward is over (every gradient in it is final), so its
  // parameters can go; the gradient buffer waits for the reduce-scatter.
  if (stage_ == 3) {
    B.in_backward = false;
    release_params(b);
  }
}

void ZeroSync::complete(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  const auto t0 = std::chrono::steady_clock::now();
  B.reduce->wait();
  wait_ms_ += ms_since(t0);
  B.reduce.reset();
  if (stage_ == 1) {
    B.shard_grad.copy_(B.received);
  } else {  // accumulated over micro-batches in the shard; the full buffer goes
    TN_KERNEL(axpby, B.shard_grad.device(), 1.0, B.received, 1.0, B.shard_grad, B.shard_grad);
    storage_of(buffers_->grads(b)).release();
    B.grads_live = false;
  }
  B.received = Tensor();
  std::erase(in_flight_, b);
}

void ZeroSync::poll() {
  while (!in_flight_.empty() && buckets_[static_cast<size_t>(in_flight_.front())].reduce->test())
    complete(in_flight_.front());
}

void ZeroSync::ensure_grads(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  if (B.grads_live) return;
  Tensor& full = buffers_->grads(b);
  storage_of(full).materialize();
  full.fill_(0.0);
  B.grads_live = true;
}

void ZeroSync::start_gather(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  if (B.params_live) return;
  Tensor& full = buffers_->params(b);
  storage_of(full).materialize();
  if (gather_dtype_ == DType::f32) {
    B.gather = ctx_.dp->all_gather_async(B.master, full);
  } else {
    B.half = Tensor::empty({B.shard_size}, gather_dtype_, full.device());
    TN_KERNEL(cast, full.device(), B.master, B.half);
    B.half_full = Tensor::empty({full.numel()}, gather_dtype_, full.device());
    B.gather = ctx_.dp->all_gather_async(B.half, B.half_full);
  }
  B.params_live = true;
}

void ZeroSync::wait_gather(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  if (!B.gather) return;
  B.gather->wait();
  B.gather.reset();
  if (B.half_full.defined()) TN_KERNEL(cast, B.half_full.device(), B.half_full, buffers_->params(b));
  B.half = B.half_full = Tensor();
}

void ZeroSync::ensure_gathered(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  start_gather(b);
  if (!B.gather) return;
  const auto t0 = std::chrono::steady_clock::now();
  wait_gather(b);
  wait_ms_ += ms_since(t0);
}

void ZeroSync::release_params(int b) {
  Bucket& B = buckets_[static_cast<size_t>(b)];
  if (pinned_ || !B.params_live) return;
  wait_gather(b);
  storage_of(buffers_->params(b)).release();
  B.params_live = false;
}

void ZeroSync::prefetch(int region) {
  if (!prefetch_ || region < 0 || static_cast<size_t>(region) >= region_buckets_.size()) return;
  for (const int b : region_buckets_[static_cast<size_t>(region)]) start_gather(b);
}

void ZeroSync::before_forward(int region) {
  if (stage_ < 3) return;
  for (const int b : region_buckets_.at(static_cast<size_t>(region))) ensure_gathered(b);
  prefetch(region + 1);
}

void ZeroSync::after_forward(int region) {
  if (stage_ < 3) return;
  for (const int b : region_buckets_.at(static_cast<size_t>(region)))
    if (!buckets_[static_cast<size_t>(b)].in_backward) release_params(b);
}

void ZeroSync::before_backward(int region) {
  for (const int b : region_buckets_.at(static_cast<size_t>(region))) {
    Bucket& B = buckets_[static_cast<size_t>(b)];
    // The previous micro-batch's reduce-scatter of this bucket must be out of its buffer.
    while (B.reduce) complete(in_flight_.front());
    ensure_grads(b);
    if (stage_ == 3) {
      ensure_gathered(b);
      B.in_backward = true;
    }
  }
  if (stage_ == 3) prefetch(region - 1);
}

void ZeroSync::finish() {
  if (compressing()) {
    // The accumulated full gradients, compressed. Stage 1's range is a view of them; stages
    // 2 and 3 copy theirs into the shard gradient and free the full buffers.
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> grads;
    for (const auto& p : gpt_.parameters()) grads.push_back(autograd::grad(p.tensor));
    powersgd_->reduce(grads);
    wait_ms_ += ms_since(t0);
    if (stage_ >= 2) {
      for (size_t b = 0; b < buckets_.size(); ++b) {
        Bucket& B = buckets_[b];
        B.shard_grad.copy_(buffers_->grads(static_cast<int>(b)).slice(0, B.shard_begin, B.shard_begin + B.shard_size));
        storage_of(buffers_->grads(static_cast<int>(b))).release();
        B.grads_live = false;
        B.in_backward = false;
        if (stage_ == 3) release_params(static_cast<int>(b));
      }
    }
    sum_over_tp_and_tied();
    return;
  }
  // Buckets that completed in no backward of this step (stage 1: in none but the last; or a
  // gradient that reached only part of a bucket) go now, in bucket order.
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& B = buckets_[b];
    if (!B.launched && B.grads_live && (stage_ >= 2 || !B.reduce)) launch(static_cast<int>(b));
  }
  while (!in_flight_.empty()) complete(in_flight_.front());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    buckets_[b].in_backward = false;
    if (stage_ == 3) release_params(static_cast<int>(b));  // prefetched and never used, or kept
  }
  sum_over_tp_and_tied();
}

void ZeroSync::sum_over_tp_and_tied() {
  const auto t0 = std::chrono::steady_clock::now();
  sum_over_tp(*ctx_.tp, tp_summed_grads_);
  if (tied_bucket_ >= 0)
    ctx_.embedding->all_reduce(buckets_[static_cast<size_t>(tied_bucket_)].shard_grad, parallel::ReduceOp::kSum);
  wait_ms_ += ms_since(t0);
}

void ZeroSync::after_update() {
  if (stage_ == 3) return;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> mine;
  std::vector<std::unique_ptr<parallel::Work>> works;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Tensor& full = buffers_->params(static_cast<int>(b));
    const Bucket& B = buckets_[b];
    mine.push_back(full.slice(0, B.shard_begin, B.shard_begin + B.shard_size).clone());
    works.push_back(ctx_.dp->all_gather_async(mine.back(), full));
  }
  for (auto& w : works) w->wait();
  wait_ms_ += ms_since(t0);
}

void ZeroSync::gather_all() {
  if (stage_ < 3) return;
  for (size_t b = 0; b < buckets_.size(); ++b) ensure_gathered(static_cast<int>(b));
  pinned_ = true;
}

}  // namespace ternion::train

#include "parallel/data_parallel.h"

#include <chrono>

#include "autograd/autograd.h"
#include "core/error.h"

namespace ternion::parallel {

struct GradReducer::State {
  struct Slot {
    int bucket = 0;
    int64_t offset = 0;  // elements into the bucket buffer
    bool ready = false;
  };
  struct Bucket {
    Tensor buffer;             // flat f32 on the parameters' device
    std::vector<int> params;   // indices into `params`
    int pending = 0;           // params whose gradient is not yet final this step
    std::unique_ptr<Work> work;
  };
  Communicator* comm = nullptr;
  std::vector<Tensor> params;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<int> launch_order;
  bool sync = false;
  int launched_early = 0;

  // Parameter i's part of its bucket's buffer (a view).
  Tensor region(const Bucket& bk, int i) const {
    return bk.buffer.slice(0, slots[i].offset, slots[i].offset + params[i].numel());
  }

  void launch(int b) {
    Bucket& bk = buckets[b];
    bk.work = comm->all_reduce_async(bk.buffer, ReduceOp::kAvg);
    launch_order.push_back(b);
  }

  void on_ready(int i) {
    if (!sync) return;
    Slot& s = slots[i];
    TN_CHECK(!s.ready, "data_parallel", "gradient of parameter ", i,
             " became ready twice in one backward (call begin_backward before each)");
    s.ready = true;
    Bucket& bk = buckets[s.bucket];
    const Tensor g = autograd::grad(params[i]);
    region(bk, i).copy_(g.contiguous().view({g.numel()}));
    if (--bk.pending == 0) {
      launch(s.bucket);
      ++launched_early;
    }
  }
};

GradReducer::GradReducer(Communicator& dp, std::vector<Tensor> params, double bucket_mb)
    : state_(std::make_shared<State>()) {
  State& st = *state_;
  st.comm = &dp;
  st.params = std::move(params);
  st.slots.resize(st.params.size());
  if (dp.size() == 1) return;
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1048576.0 / sizeof(float)));
  std::vector<int64_t> sizes;
  for (int i = static_cast<int>(st.params.size()) - 1; i >= 0; --i) {
    const Tensor& p = st.params[i];
    TN_CHECK(p.dtype() == DType::f32 && p.device() == st.params.back().device(), "data_parallel", "parameter ", i,
             " is ", p.str(), " on ", p.device().str(), "; the reducer buckets f32 gradients of one device (",
             st.params.back().device().str(), ")");
    if (st.buckets.empty() || (sizes.back() > 0 && sizes.back() + p.numel() > cap)) {
      st.buckets.emplace_back();
      sizes.push_back(0);
    }
    st.slots[i] = {static_cast<int>(st.buckets.size()) - 1, sizes.back(), false};
    st.buckets.back().params.push_back(i);
    sizes.back() += p.numel();
  }
  for (size_t b = 0; b < st.buckets.size(); ++b) {
    st.buckets[b].buffer = Tensor::empty({sizes[b]}, DType::f32, st.params.front().device());
    stats_.bytes += sizes[b] * static_cast<int64_t>(sizeof(float));
  }
  stats_.buckets = static_cast<int>(st.buckets.size());
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < st.params.size(); ++i) {
    autograd::register_grad_ready_hook(st.params[i], [weak, i](const Tensor&) {
      if (auto s = weak.lock()) s->on_ready(static_cast<int>(i));
    });
  }
}

GradReducer::~GradReducer() {
  // Never leave a collective half-issued: peers would wait for it.
  for (auto& b : state_->buckets)
    if (b.work) b.work->wait();
}

void GradReducer::begin_backward(bool sync) {
  State& st = *state_;
  if (st.comm->size() == 1) return;
  st.sync = sync;
  if (!sync) return;
  for (auto& s : st.slots) s.ready = false;
  for (auto& b : st.buckets) {
    b.pending = static_cast<int>(b.params.size());
    b.work.reset();
  }
  st.launch_order.clear();
  st.launched_early = 0;
}

void GradReducer::finish() {
  State& st = *state_;
  if (st.comm->size() == 1) return;
  TN_CHECK(st.sync, "data_parallel", "finish() without a begin_backward(true) before the last backward");
  const auto t0 = std::chrono::steady_clock::now();
  // Parameters the graph did not reach: zeros, then launch in bucket order (the same on
  // every rank, as every rank ran the same graph).
  for (size_t b = 0; b < st.buckets.size(); ++b) {
    State::Bucket& bk = st.buckets[b];
    if (bk.work) continue;
    for (int i : bk.params) {
      State::Slot& s = st.slots[i];
      if (!s.ready) st.region(bk, i).zero_();
    }
    st.launch(static_cast<int>(b));
  }
  for (int b : st.launch_order) {
    State::Bucket& bk = st.buckets[b];
    bk.work->wait();
    bk.work.reset();
    for (int i : bk.params) {
      Tensor g = autograd::grad(st.params[i]);
      if (!g.defined()) continue;  // unused everywhere: stays without gradient
      g.view({g.numel()}).copy_(st.region(bk, i));  // grads are contiguous (AccumulateGrad)
    }
  }
  stats_.wait_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stats_.launched_early = st.launched_early;
  st.sync = false;
}

std::vector<int> GradReducer::bucket_of_params() const {
  std::vector<int> out;
  for (const auto& s : state_->slots) out.push_back(s.bucket);
  return out;
}

}  // namespace ternion::parallel

#include "parallel/data_parallel.h"

#include <chrono>

#include "autograd/autograd.h"
#include "core/error.h"

namespace ternion::parallel {
namespace {

// Gives a leaf without a gradient a zero one and returns it. Autograd makes every .grad in
// AccumulateGrad, so this runs a backward from the leaf itself seeded with zeros (its
// grad-ready hooks fire, as for any accumulation).
Tensor zero_grad_like(Tensor& param) {
  autograd::backward({param}, {Tensor::zeros(param.shape(), param.dtype(), param.device())});
  return autograd::grad(param);
}

}  // namespace

struct GradReducer::State {
  struct Slot {
    int bucket = 0;
    int64_t offset = 0;  // elements into the bucket buffer
    bool ready = false;
  };
  // buffer: (G + P) f32 on the parameters' device: the bucket's G gradient elements, then
  // one flag per parameter, in `params` order (1: this rank has a gradient for it, 0: none), averaged with
  // them, so that after the all-reduce every rank knows whether any rank had one.
  struct Bucket {
    Tensor buffer;
    int64_t grad_elems = 0;    // G
    std::vector<int> params;   // indices into `params` (P of them)
    int pending = 0;           // params whose gradient is not yet final this step
    std::unique_ptr<Work> work;
  };
  Communicator* comm = nullptr;
  std::vector<Tensor> params;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  int next_launch = 0;  // buckets launch in index order: the same on every rank
  bool sync = false;
  int launched_early = 0;

  // Parameter i's part of its bucket's buffer (a view).
  Tensor region(const Bucket& bk, int i) const {
    return bk.buffer.slice(0, slots[i].offset, slots[i].offset + params[i].numel());
  }
  Tensor flags(const Bucket& bk) const { return bk.buffer.slice(0, bk.grad_elems, bk.buffer.numel()); }

  void launch(int b) {
    Bucket& bk = buckets[b];
    bk.work = comm->all_reduce_async(bk.buffer, ReduceOp::kAvg);
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
    if (--bk.pending == 0) flags(bk).fill_(1.0);  // every parameter of it has its gradient here
    // Launch every complete bucket whose turn it is.
    while (next_launch < static_cast<int>(buckets.size()) && buckets[next_launch].pending == 0) {
      launch(next_launch++);
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
    State::Bucket& bk = st.buckets[b];
    bk.grad_elems = sizes[b];
    bk.buffer = Tensor::empty({sizes[b] + static_cast<int64_t>(bk.params.size())}, DType::f32,
                              st.params.front().device());
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
  st.next_launch = 0;
  st.launched_early = 0;
}

void GradReducer::finish() {
  State& st = *state_;
  if (st.comm->size() == 1) return;
  TN_CHECK(st.sync, "data_parallel", "finish() without a begin_backward(true) before the last backward");
  const auto t0 = std::chrono::steady_clock::now();
  // The buckets the hooks did not launch, in order. A parameter whose hook did not fire in
  // this backward contributes the gradient it accumulated in earlier micro-batches, or
  // zeros (flag 0) when it has none.
  for (; st.next_launch < static_cast<int>(st.buckets.size()); ++st.next_launch) {
    State::Bucket& bk = st.buckets[st.next_launch];
    std::vector<float> has(bk.params.size(), 1.0f);
    for (size_t j = 0; j < bk.params.size(); ++j) {
      const int i = bk.params[j];
      if (st.slots[i].ready) continue;
      const Tensor g = autograd::grad(st.params[i]);
      if (g.defined()) {
        st.region(bk, i).copy_(g.contiguous().view({g.numel()}));
      } else {
        st.region(bk, i).zero_();
        has[j] = 0.0f;
      }
    }
    Tensor f = st.flags(bk);
    f.copy_(Tensor::from_vector<float>(has, {static_cast<int64_t>(has.size())}).to(f.device()));
    st.launch(st.next_launch);
  }
  st.sync = false;  // from here the hooks ignore backward (zero_grad_like below runs one)
  for (State::Bucket& bk : st.buckets) {
    bk.work->wait();
    bk.work.reset();
    std::vector<float> any;  // the averaged flags, read only when some gradient is missing here
    for (size_t j = 0; j < bk.params.size(); ++j) {
      Tensor& p = st.params[bk.params[j]];
      Tensor g = autograd::grad(p);
      if (!g.defined()) {
        if (any.empty()) any = st.flags(bk).to(Device::cpu()).to_vector<float>();
        if (any[j] == 0.0f) continue;  // no rank has one: stays without gradient everywhere
        g = zero_grad_like(p);         // another rank has one: a missing gradient is zero
      }
      g.view({g.numel()}).copy_(st.region(bk, bk.params[j]));  // grads are contiguous (AccumulateGrad)
    }
  }
  stats_.wait_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  stats_.launched_early = st.launched_early;
}

std::vector<int> GradReducer::bucket_of_params() const {
  std::vector<int> out;
  for (const auto& s : state_->slots) out.push_back(s.bucket);
  return out;
}

}  // namespace ternion::parallel

#include "parallel/flat_layout.h"

#include <algorithm>

#include "autograd/autograd.h"
#include "core/error.h"

namespace ternion::parallel {

FlatLayout::FlatLayout(const std::vector<int64_t>& numels, int64_t bucket_elems, int dp,
                       const std::vector<int>& groups)
    : dp_(dp) {
  TN_CHECK(dp >= 1, "flat_layout", "dp must be >= 1, got ", dp);
  TN_CHECK(groups.empty() || groups.size() == numels.size(), "flat_layout", groups.size(), " group ids for ",
           numels.size(), " parameters");
  TN_CHECK(bucket_elems >= 1, "flat_layout", "the bucket size must be >= 1 element, got ", bucket_elems);
  where_.resize(numels.size());
  FlatBucket open;
  const auto close = [&] {
    if (open.params.empty()) return;
    open.numel = (open.used + dp - 1) / dp * dp;
    buckets_.push_back(std::move(open));
    open = FlatBucket{};
  };
  for (size_t k = numels.size(); k-- > 0;) {  // reverse: the order backward produces gradients
    const int64_t n = numels[k];
    TN_CHECK(n >= 0, "flat_layout", "parameter ", k, " has ", n, " elements");
    const bool new_group = !groups.empty() && k + 1 < numels.size() && groups[k] != groups[k + 1];
    if (!open.params.empty() && (open.used + n > bucket_elems || new_group)) close();
    where_[k] = {static_cast<int>(buckets_.size()), open.params.size()};
    open.params.push_back({static_cast<int>(k), 0, open.used, n});
    open.used += n;
  }
  close();
}

const FlatSegment& FlatLayout::segment_of(int param) const {
  TN_CHECK(param >= 0 && static_cast<size_t>(param) < where_.size(), "flat_layout", "no parameter ", param, " among ",
           where_.size());
  const auto& [b, i] = where_[static_cast<size_t>(param)];
  return buckets_[static_cast<size_t>(b)].params[i];
}

int64_t FlatLayout::shard_size(int bucket) const {
  return buckets_.at(static_cast<size_t>(bucket)).numel / dp_;
}

int64_t FlatLayout::shard_begin(int bucket, int rank) const {
  TN_CHECK(rank >= 0 && rank < dp_, "flat_layout", "rank ", rank, " is not a rank of dp = ", dp_);
  return static_cast<int64_t>(rank) * shard_size(bucket);
}

std::vector<FlatSegment> FlatLayout::shard_pieces(int bucket, int rank) const {
  const int64_t begin = shard_begin(bucket, rank), end = begin + shard_size(bucket);
  std::vector<FlatSegment> out;
  for (const FlatSegment& s : buckets_.at(static_cast<size_t>(bucket)).params) {
    const int64_t a = std::max(begin, s.offset), b = std::min(end, s.offset + s.numel);
    if (a < b) out.push_back({s.param, a - s.offset, a, b - a});
  }
  return out;
}

int64_t FlatLayout::total_numel() const {
  int64_t n = 0;
  for (const FlatBucket& b : buckets_) n += b.numel;
  return n;
}

namespace {

std::vector<int64_t> numels_of(const std::vector<Tensor*>& params) {
  std::vector<int64_t> n;
  for (const Tensor* p : params) n.push_back(p->numel());
  return n;
}

}  // namespace

FlatBuffers::FlatBuffers(const std::vector<Tensor*>& params, int64_t bucket_elems, int dp,
                         const std::vector<int>& groups)
    : layout_(numels_of(params), bucket_elems, dp, groups) {
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& p = *params[k];
    TN_CHECK(autograd::is_leaf(p) && autograd::requires_grad(p) && p.is_contiguous(), "flat_buffers", "parameter ",
             k, " must be a contiguous leaf that requires grad, got ", p.str());
    TN_CHECK(p.dtype() == params[0]->dtype() && p.device() == params[0]->device(), "flat_buffers", "parameter ", k,
             " ", p.str(), " differs in dtype or device from ", params[0]->str());
  }
  const DType dtype = params.empty() ? DType::f32 : params[0]->dtype();
  const Device device = params.empty() ? Device::cpu() : params[0]->device();
  for (const FlatBucket& b : layout_.buckets()) {
    params_.push_back(Tensor::zeros({b.numel}, dtype, device));
    grads_.push_back(Tensor::zeros({b.numel}, dtype, device));
  }
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor& p = *params[k];
    const int b = layout_.bucket_of(static_cast<int>(k));
    const FlatSegment& s = layout_.segment_of(static_cast<int>(k));
    Tensor view = params_[static_cast<size_t>(b)].slice(0, s.offset, s.offset + s.numel).view(p.shape());
    view.copy_(p);
    autograd::set_requires_grad(view);
    autograd::set_grad(view, grads_[static_cast<size_t>(b)].slice(0, s.offset, s.offset + s.numel).view(p.shape()));
    p = view;
  }
}

void FlatBuffers::zero_grads() {
  for (Tensor& g : grads_) g.fill_(0.0);
}

}  // namespace ternion::parallel

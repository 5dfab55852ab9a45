#include "parallel/flat_layout.h"

#include <algorithm>

#include "core/error.h"

namespace ternion::parallel {

FlatLayout::FlatLayout(const std::vector<int64_t>& numels, int64_t bucket_elems, int dp) : dp_(dp) {
  TN_CHECK(dp >= 1, "flat_layout", "dp must be >= 1, got ", dp);
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
    if (!open.params.empty() && open.used + n > bucket_elems) close();
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

}  // namespace ternion::parallel

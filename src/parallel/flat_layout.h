// ZeRO's flat buffers, as arithmetic: how the parameters of a rank's model shard (after tp and
// pp) pack into buckets, and which contiguous range of each bucket a data-parallel rank owns.
// Pure functions of the parameter sizes, the bucket size and dp; no tensors, no MPI.
//
// Buckets are filled in reverse parameter order (the order backward produces gradients, as
// the data-parallel reducer does), each up to `bucket_elems` elements; a parameter is never
// split between buckets, so one larger than the limit gets a bucket of its own. Each bucket
// is padded at its end to a multiple of dp; dp rank r owns elements [r·n/dp, (r+1)·n/dp) of a
// bucket of n (padded) elements. A parameter can straddle two or more ranks' ranges, and a
// rank's range can hold padding only (an empty shard of that bucket).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ternion::parallel {

// Elements [offset, offset + numel) of a bucket hold elements [param_offset, param_offset +
// numel) of parameter `param` (its index in the list given to make_flat_layout).
struct FlatSegment {
  int param = 0;
  int64_t param_offset = 0;
  int64_t offset = 0;
  int64_t numel = 0;
  bool operator==(const FlatSegment&) const = default;
};

struct FlatBucket {
  int64_t numel = 0;   // padded to a multiple of dp
  int64_t used = 0;    // elements holding parameters; the rest is padding
  std::vector<FlatSegment> params;  // whole parameters, in bucket order
};

class FlatLayout {
 public:
  // numels: each parameter's element count (>= 0), in model order. bucket_elems >= 1, dp >= 1.
  // groups (empty, or one id per parameter): a bucket never holds parameters of two groups
  // (ZeRO-3 gathers a region's buckets; the tied embedding's bucket is alike on both pipeline
  // stages that hold it). Throws Error naming the argument otherwise.
  FlatLayout(const std::vector<int64_t>& numels, int64_t bucket_elems, int dp, const std::vector<int>& groups = {});

  int dp() const { return dp_; }
  const std::vector<FlatBucket>& buckets() const { return buckets_; }
  // Where parameter i lies: its bucket and its segment there.
  int bucket_of(int param) const { return where_.at(static_cast<std::size_t>(param)).first; }
  const FlatSegment& segment_of(int param) const;
  // dp rank r's range of bucket b: [begin, begin + size) in bucket elements.
  int64_t shard_begin(int bucket, int rank) const;
  int64_t shard_size(int bucket) const;
  // The pieces of parameters inside rank r's range of bucket b, in bucket order; offsets are
  // bucket offsets (padding is in no piece). Empty for a range of padding only.
  std::vector<FlatSegment> shard_pieces(int bucket, int rank) const;
  // Elements of all buckets together (padded), and rank r's share of them (every rank the same).
  int64_t total_numel() const;
  int64_t shard_numel() const { return total_numel() / dp_; }

 private:
  int dp_;
  std::vector<FlatBucket> buckets_;
  std::vector<std::pair<int, std::size_t>> where_;  // per parameter: bucket, index in its params
};

// The flat buffers themselves: one parameter buffer and one gradient buffer per bucket of
// a FlatLayout, each parameter a view of the first (same values; still a leaf that requires
// grad) and its gradient a view of the second (autograd::set_grad), so backward accumulates
// straight into the buckets and a bucket's collective runs on the buffer itself, with no
// copy in or out. Padding elements are zero.
class FlatBuffers {
 public:
  // params: leaves that require grad, one dtype and device, each contiguous; the pointed-to
  // tensors are replaced by their views (anything that holds the old tensors, such as hooks
  // or optimizer references, must be made after). Their current values are copied in; the
  // gradients start at zero.
  FlatBuffers(const std::vector<Tensor*>& params, int64_t bucket_elems, int dp, const std::vector<int>& groups = {});

  const FlatLayout& layout() const { return layout_; }
  Tensor& params(int bucket) { return params_.at(static_cast<size_t>(bucket)); }
  Tensor& grads(int bucket) { return grads_.at(static_cast<size_t>(bucket)); }
  // Zeroes every gradient buffer; the gradients stay views of them (use this, not
  // autograd::zero_grad, between steps).
  void zero_grads();

 private:
  FlatLayout layout_;
  std::vector<Tensor> params_, grads_;  // per bucket, 1-D
};

}  // namespace ternion::parallel

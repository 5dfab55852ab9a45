#include "checkpoint/coverage.h"

#include <algorithm>

#include "core/error.h"

namespace ternion::checkpoint {

namespace {

void check_ranks(const Box& a, const Box& b, const char* op) {
  TN_CHECK(a.rank() == b.rank() && a.offsets.size() == a.shape.size() && b.offsets.size() == b.shape.size(),
           op, "boxes of different rank: ", box_str(a), " and ", box_str(b));
}

}  // namespace

int64_t Box::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= std::max<int64_t>(s, 0);
  return n;
}

std::string box_str(const Box& b) {
  std::string out = "[";
  for (size_t d = 0; d < b.shape.size(); ++d) {
    const int64_t lo = d < b.offsets.size() ? b.offsets[d] : 0;
    out += str_cat(d ? ", " : "", lo, ":", lo + b.shape[d]);
  }
  return out + "]";
}

std::optional<Box> intersect(const Box& a, const Box& b) {
  check_ranks(a, b, "intersect");
  Box out;
  out.offsets.resize(a.shape.size());
  out.shape.resize(a.shape.size());
  for (size_t d = 0; d < a.shape.size(); ++d) {
    const int64_t lo = std::max(a.offsets[d], b.offsets[d]);
    const int64_t hi = std::min(a.offsets[d] + a.shape[d], b.offsets[d] + b.shape[d]);
    if (hi <= lo) return std::nullopt;
    out.offsets[d] = lo;
    out.shape[d] = hi - lo;
  }
  return out;
}

std::vector<Box> subtract(const Box& a, const Box& b) {
  check_ranks(a, b, "subtract");
  if (a.empty()) return {};
  const std::optional<Box> common = intersect(a, b);
  if (!common) return {a};
  // Peel a off dimension by dimension: the slabs below and above b in dimension d, then
  // narrow the rest to b's range there. What remains at the end is the intersection.
  std::vector<Box> out;
  Box rest = a;
  for (size_t d = 0; d < a.shape.size(); ++d) {
    const int64_t lo = common->offsets[d], hi = lo + common->shape[d];
    const int64_t rest_hi = rest.offsets[d] + rest.shape[d];
    if (rest.offsets[d] < lo) {
      Box below = rest;
      below.shape[d] = lo - rest.offsets[d];
      out.push_back(std::move(below));
    }
    if (hi < rest_hi) {
      Box above = rest;
      above.offsets[d] = hi;
      above.shape[d] = rest_hi - hi;
      out.push_back(std::move(above));
    }
    rest.offsets[d] = lo;
    rest.shape[d] = hi - lo;
  }
  return out;
}

std::vector<Box> uncovered(const Box& target, const std::vector<Box>& pieces) {
  for (const Box& piece : pieces) check_ranks(target, piece, "uncovered");
  std::vector<Box> left;
  if (!target.empty()) left.push_back(target);
  for (const Box& piece : pieces) {
    if (left.empty()) break;
    std::vector<Box> next;
    for (const Box& box : left) {
      std::vector<Box> parts = subtract(box, piece);
      next.insert(next.end(), std::make_move_iterator(parts.begin()), std::make_move_iterator(parts.end()));
    }
    left = std::move(next);
  }
  std::sort(left.begin(), left.end(), [](const Box& x, const Box& y) { return x.offsets < y.offsets; });
  return left;
}

}  // namespace ternion::checkpoint

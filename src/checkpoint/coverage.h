// Box arithmetic for sharded tensors: which part of a requested box a set of stored pieces
// leaves uncovered. Pure functions, no I/O; read_tensor uses them to refuse gaps exactly.
//
//   uncovered({{0, 0}, {4, 2}}, {{{0, 0}, {2, 2}}, {{0, 0}, {2, 2}}})  ->  {{{2, 0}, {2, 2}}}
//
// Cost is in boxes, not elements: subtracting one box from another yields at most 2·N boxes
// (N = rank), so a GPT-2 tensor split into any realistic number of pieces is a few hundred
// box operations whatever its 38M elements.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ternion::checkpoint {

// Elements [offsets[d], offsets[d] + shape[d]) of every dimension d of an N-d tensor.
// A 0-d box (no dimensions) is the one element of a scalar.
struct Box {
  std::vector<int64_t> offsets;
  std::vector<int64_t> shape;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const;
  bool empty() const { return numel() == 0; }
  bool operator==(const Box&) const = default;
};

// "[2:4, 0:5]" (half-open ranges); "[]" for a 0-d box.
std::string box_str(const Box& b);

// The elements in both a and b; nullopt when there are none.
// REQUIRES: a.rank() == b.rank() (throws Error otherwise).
std::optional<Box> intersect(const Box& a, const Box& b);

// The elements of `a` outside `b`, as at most 2·rank disjoint non-empty boxes.
// REQUIRES: a.rank() == b.rank().
std::vector<Box> subtract(const Box& a, const Box& b);

// The elements of `target` in no piece, as disjoint non-empty boxes sorted by offsets
// (lexicographically), so front() holds the first uncovered index. Empty when the pieces
// cover the target. Pieces may overlap each other and extend outside the target.
// REQUIRES: every piece has target's rank.
std::vector<Box> uncovered(const Box& target, const std::vector<Box>& pieces);

}  // namespace ternion::checkpoint

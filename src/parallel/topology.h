// Topology: how the world's ranks are laid out over the data-, tensor- and pipeline-parallel
// axes. A pure function of (sizes, order): no MPI, unit-tested for thousands of shapes.
//
// The order lists the axes innermost first: with "tp-dp-pp" (the default) consecutive ranks
// differ in their tp coordinate, so a tensor-parallel group is a block of adjacent ranks
// (one node, when tp ≤ GPUs per node); then dp; pp is outermost. A rank's number is
//   rank = Σ_axis coord[axis] · stride[axis],  stride[innermost] = 1,
//   stride[next] = stride[prev] · size[prev].
#pragma once

#include <array>
#include <string>
#include <vector>

namespace ternion::parallel {

enum class Axis { dp = 0, tp = 1, pp = 2 };
const char* axis_name(Axis a);

struct Coord {
  int dp = 0, tp = 0, pp = 0;
  int operator[](Axis a) const;
  int& operator[](Axis a);
  bool operator==(const Coord&) const = default;
};

struct Layout {
  int dp = 1, tp = 1, pp = 1;
  std::array<Axis, 3> order{Axis::tp, Axis::dp, Axis::pp};  // innermost first

  int world_size() const { return dp * tp * pp; }
  int size(Axis a) const;
  std::string order_str() const;  // "tp-dp-pp"
  std::string str() const;        // "dp=2 tp=1 pp=1 (order tp-dp-pp, 2 ranks)"
  bool operator==(const Layout&) const = default;
};

// Parses "tp-dp-pp" and its permutations. Throws Error naming the string otherwise.
std::array<Axis, 3> parse_order(const std::string& order);

// Resolves dp (0 = auto: world_size / (tp·pp)) and checks tp·pp divides world_size and
// dp·tp·pp == world_size. Throws Error naming parallel.dp/tp/pp and the world size.
Layout resolve_layout(int dp, int tp, int pp, const std::string& order, int world_size);

Coord coord_of(const Layout& layout, int rank);
int rank_of(const Layout& layout, const Coord& coord);

// The partition of the world along `axis`: one group per combination of the other two
// coordinates, each listing its ranks by increasing coordinate along `axis` (so a rank's
// index in its group is its coordinate). Groups are ordered by their lowest rank.
std::vector<std::vector<int>> axis_groups(const Layout& layout, Axis axis);

// The tied-embedding groups: for each (dp, tp), the first and last pipeline stage's ranks
// ({first} alone when pp == 1). Ordered by lowest rank.
std::vector<std::vector<int>> embedding_groups(const Layout& layout);

}  // namespace ternion::parallel

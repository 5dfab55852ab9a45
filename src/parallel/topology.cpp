#include "parallel/topology.h"

#include <algorithm>

#include "core/error.h"

namespace ternion::parallel {

const char* axis_name(Axis a) {
  switch (a) {
    case Axis::dp: return "dp";
    case Axis::tp: return "tp";
    case Axis::pp: return "pp";
  }
  return "?";
}

int Coord::operator[](Axis a) const { return a == Axis::dp ? dp : a == Axis::tp ? tp : pp; }
int& Coord::operator[](Axis a) { return a == Axis::dp ? dp : a == Axis::tp ? tp : pp; }

int Layout::size(Axis a) const { return a == Axis::dp ? dp : a == Axis::tp ? tp : pp; }

std::string Layout::order_str() const {
  return str_cat(axis_name(order[0]), "-", axis_name(order[1]), "-", axis_name(order[2]));
}

std::string Layout::str() const {
  return str_cat("dp=", dp, " tp=", tp, " pp=", pp, " (order ", order_str(), ", ", world_size(),
                 world_size() == 1 ? " rank)" : " ranks)");
}

std::array<Axis, 3> parse_order(const std::string& order) {
  std::array<Axis, 3> out{};
  bool seen[3] = {false, false, false};
  size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t end = i < 2 ? order.find('-', pos) : order.size();
    TN_CHECK(end != std::string::npos, "parallel", "parallel.order = '", order,
             "' must name tp, dp and pp once each, joined by '-' (e.g. tp-dp-pp)");
    const std::string part = order.substr(pos, end - pos);
    Axis a;
    if (part == "dp") a = Axis::dp;
    else if (part == "tp") a = Axis::tp;
    else if (part == "pp") a = Axis::pp;
    else fail("parallel", str_cat("parallel.order = '", order, "': unknown axis '", part,
                                  "' (expected tp, dp and pp joined by '-')"));
    TN_CHECK(!seen[static_cast<int>(a)], "parallel", "parallel.order = '", order, "' names ",
             part, " twice");
    seen[static_cast<int>(a)] = true;
    out[i] = a;
    pos = end + 1;
  }
  return out;
}

Layout resolve_layout(int dp, int tp, int pp, const std::string& order, int world_size) {
  TN_CHECK(tp >= 1 && pp >= 1 && dp >= 0, "parallel", "parallel.dp/tp/pp must be positive (dp may be auto); got dp=",
           dp, " tp=", tp, " pp=", pp);
  Layout l;
  l.order = parse_order(order);
  l.tp = tp;
  l.pp = pp;
  TN_CHECK(world_size % (tp * pp) == 0, "parallel", "world size ", world_size,
           " is not divisible by parallel.tp * parallel.pp = ", tp, " * ", pp, " = ", tp * pp);
  l.dp = dp == 0 ? world_size / (tp * pp) : dp;
  TN_CHECK(l.world_size() == world_size, "parallel", "parallel.dp * tp * pp = ", l.dp, " * ", tp,
           " * ", pp, " = ", l.world_size(), " but the job has ", world_size,
           " ranks (set parallel.dp: auto, or launch ", l.world_size(), " ranks)");
  return l;
}

Coord coord_of(const Layout& layout, int rank) {
  TN_CHECK(rank >= 0 && rank < layout.world_size(), "parallel", "rank ", rank, " outside ",
           layout.str());
  Coord c;
  for (Axis a : layout.order) {
    c[a] = rank % layout.size(a);
    rank /= layout.size(a);
  }
  return c;
}

int rank_of(const Layout& layout, const Coord& coord) {
  int rank = 0, stride = 1;
  for (Axis a : layout.order) {
    TN_CHECK(coord[a] >= 0 && coord[a] < layout.size(a), "parallel", axis_name(a), " coordinate ",
             coord[a], " outside ", layout.str());
    rank += coord[a] * stride;
    stride *= layout.size(a);
  }
  return rank;
}

std::vector<std::vector<int>> axis_groups(const Layout& layout, Axis axis) {
  std::vector<std::vector<int>> groups;
  const int n = layout.size(axis);
  groups.reserve(layout.world_size() / n);
  for (int r = 0; r < layout.world_size(); ++r) {
    Coord c = coord_of(layout, r);
    if (c[axis] != 0) continue;  // r is the first member of its group
    std::vector<int> g(n);
    for (int i = 0; i < n; ++i) {
      c[axis] = i;
      g[i] = rank_of(layout, c);
    }
    groups.push_back(std::move(g));
  }
  return groups;  // first members increase with r, so groups are ordered by lowest rank
}

std::vector<std::vector<int>> embedding_groups(const Layout& layout) {
  std::vector<std::vector<int>> groups;
  for (const std::vector<int>& pipe : axis_groups(layout, Axis::pp)) {
    if (pipe.size() == 1) groups.push_back({pipe.front()});
    else groups.push_back({pipe.front(), pipe.back()});
  }
  std::sort(groups.begin(), groups.end());
  return groups;
}

}  // namespace ternion::parallel

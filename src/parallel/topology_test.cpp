#include "parallel/topology.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace ternion::parallel {
namespace {

const char* kOrders[] = {"tp-dp-pp", "tp-pp-dp", "dp-tp-pp", "dp-pp-tp", "pp-tp-dp", "pp-dp-tp"};

// Every invariant of a layout: the rank <-> coordinate map is a bijection; along each axis
// the groups partition the world (each rank exactly once), a rank's index in its group is
// its coordinate, members agree on the other two coordinates; the innermost axis's groups
// are blocks of adjacent ranks (so tp groups are contiguous in the default order).
void check_layout(const Layout& l) {
  SCOPED_TRACE(l.str());
  const int world = l.world_size();
  for (int r = 0; r < world; ++r) ASSERT_EQ(rank_of(l, coord_of(l, r)), r);
  for (Axis axis : {Axis::dp, Axis::tp, Axis::pp}) {
    const auto groups = axis_groups(l, axis);
    ASSERT_EQ(static_cast<int>(groups.size()), world / l.size(axis));
    std::vector<int> seen(world, 0);
    int prev_first = -1;
    for (const auto& g : groups) {
      ASSERT_EQ(static_cast<int>(g.size()), l.size(axis));
      ASSERT_GT(g.front(), prev_first);
      prev_first = g.front();
      const Coord c0 = coord_of(l, g[0]);
      for (int i = 0; i < static_cast<int>(g.size()); ++i) {
        ++seen[g[i]];
        Coord c = coord_of(l, g[i]);
        ASSERT_EQ(c[axis], i);
        c[axis] = c0[axis];
        ASSERT_EQ(c, c0) << "members of one " << axis_name(axis) << " group differ off-axis";
        if (axis == l.order[0]) {
          ASSERT_EQ(g[i], g[0] + i) << "innermost groups are contiguous";
        }
      }
    }
    for (int r = 0; r < world; ++r) ASSERT_EQ(seen[r], 1) << "rank " << r << " along " << axis_name(axis);
  }
  const auto emb = embedding_groups(l);
  ASSERT_EQ(static_cast<int>(emb.size()), l.dp * l.tp);
  std::set<int> in_emb;
  for (const auto& g : emb) {
    ASSERT_EQ(g.size(), l.pp == 1 ? 1u : 2u);
    ASSERT_EQ(coord_of(l, g.front()).pp, 0);
    ASSERT_EQ(coord_of(l, g.back()).pp, l.pp - 1);
    for (int r : g) ASSERT_TRUE(in_emb.insert(r).second);
  }
}

TEST(Topology, DefaultOrderPutsTensorParallelRanksSideBySide) {
  const Layout l = resolve_layout(0, 2, 2, "tp-dp-pp", 8);  // dp auto = 2
  EXPECT_EQ(l.dp, 2);
  EXPECT_EQ(axis_groups(l, Axis::tp), (std::vector<std::vector<int>>{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(axis_groups(l, Axis::dp), (std::vector<std::vector<int>>{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(axis_groups(l, Axis::pp), (std::vector<std::vector<int>>{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(coord_of(l, 6), (Coord{1, 0, 1}));
  EXPECT_EQ(l.str(), "dp=2 tp=2 pp=2 (order tp-dp-pp, 8 ranks)");
}

TEST(Topology, EmbeddingGroupJoinsFirstAndLastStage) {
  const Layout l = resolve_layout(1, 1, 4, "tp-dp-pp", 4);
  EXPECT_EQ(embedding_groups(l), (std::vector<std::vector<int>>{{0, 3}}));
  const Layout one = resolve_layout(0, 1, 1, "tp-dp-pp", 3);
  EXPECT_EQ(embedding_groups(one), (std::vector<std::vector<int>>{{0}, {1}, {2}}));
}

TEST(Topology, EveryShapeAndOrderUpToTenThousandRanks) {
  int checked = 0;
  const int sizes[] = {1, 2, 3, 4, 5, 8, 16, 25, 64};
  for (const char* order : kOrders)
    for (int tp : sizes)
      for (int pp : sizes)
        for (int dp : sizes) {
          const int world = dp * tp * pp;
          if (world > 10000 || (world > 600 && (dp % 8 || tp % 8))) continue;  // bound the run time
          check_layout(resolve_layout(dp, tp, pp, order, world));
          if (HasFatalFailure()) return;
          ++checked;
        }
  // and the big ones: 10,000 ranks in a few shapes
  for (const char* order : kOrders) {
    check_layout(resolve_layout(0, 8, 25, order, 10000));
    check_layout(resolve_layout(0, 1, 1, order, 10000));
    checked += 2;
  }
  EXPECT_GT(checked, 500);
}

std::string error_of(int dp, int tp, int pp, const std::string& order, int world) {
  try {
    resolve_layout(dp, tp, pp, order, world);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Topology, BadLayoutsNameTheKeysAndTheWorld) {
  EXPECT_NE(error_of(0, 3, 1, "tp-dp-pp", 8).find("world size 8 is not divisible by parallel.tp * parallel.pp = 3 * 1"),
            std::string::npos);
  EXPECT_NE(error_of(2, 2, 1, "tp-dp-pp", 8).find("parallel.dp * tp * pp = 2 * 2 * 1 = 4 but the job has 8 ranks"),
            std::string::npos);
  EXPECT_NE(error_of(0, 1, 1, "tp-dp-dp", 4).find("names dp twice"), std::string::npos);
  EXPECT_NE(error_of(0, 1, 1, "tp-xp-pp", 4).find("unknown axis 'xp'"), std::string::npos);
  EXPECT_NE(error_of(0, 1, 1, "tp-dp", 4).find("parallel.order = 'tp-dp'"), std::string::npos);
  EXPECT_EQ(error_of(0, 2, 2, "pp-dp-tp", 12), "");
}

}  // namespace
}  // namespace ternion::parallel

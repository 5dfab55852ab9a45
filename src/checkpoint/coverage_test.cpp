#include "checkpoint/coverage.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "core/error.h"

namespace ternion::checkpoint {
namespace {

Box box(std::vector<int64_t> offsets, std::vector<int64_t> shape) { return {std::move(offsets), std::move(shape)}; }

TEST(Coverage, IntersectAndStr) {
  EXPECT_EQ(intersect(box({0, 0}, {4, 2}), box({2, 1}, {5, 5})), box({2, 1}, {2, 1}));
  EXPECT_FALSE(intersect(box({0, 0}, {2, 2}), box({2, 0}, {2, 2})).has_value());  // touching
  EXPECT_FALSE(intersect(box({0}, {0}), box({0}, {4})).has_value());             // empty
  EXPECT_EQ(intersect(box({}, {}), box({}, {})), box({}, {}));                     // scalars
  EXPECT_EQ(box_str(box({2, 0}, {2, 5})), "[2:4, 0:5]");
  EXPECT_EQ(box_str(box({}, {})), "[]");
  EXPECT_THROW(intersect(box({0}, {1}), box({0, 0}, {1, 1})), Error);
}

TEST(Coverage, SubtractYieldsDisjointPartsOfTheRest) {
  // The middle of a 3x3 square leaves 4 boxes: rows above and below, columns left and right.
  const std::vector<Box> parts = subtract(box({0, 0}, {3, 3}), box({1, 1}, {1, 1}));
  ASSERT_EQ(parts.size(), 4u);
  int64_t n = 0;
  for (const Box& p : parts) n += p.numel();
  EXPECT_EQ(n, 8);
  EXPECT_EQ(subtract(box({0, 0}, {3, 3}), box({5, 5}, {1, 1})), std::vector<Box>{box({0, 0}, {3, 3})});
  EXPECT_TRUE(subtract(box({1, 1}, {2, 2}), box({0, 0}, {9, 9})).empty());
  EXPECT_TRUE(subtract(box({}, {}), box({}, {})).empty());
}

TEST(Coverage, DisjointPiecesCoverTheirUnion) {
  EXPECT_TRUE(uncovered(box({0, 0}, {4, 2}), {box({0, 0}, {2, 2}), box({2, 0}, {2, 2})}).empty());
  // A request straddling two pieces, and pieces reaching outside the request.
  EXPECT_TRUE(uncovered(box({1, 0}, {2, 2}), {box({0, 0}, {2, 2}), box({2, 0}, {2, 2})}).empty());
}

TEST(Coverage, TwoPiecesOverTheSameRowsLeaveTheOthersUncovered) {
  // Their sizes sum to the whole tensor's, but rows 2..3 are in neither.
  const auto gaps = uncovered(box({0, 0}, {4, 2}), {box({0, 0}, {2, 2}), box({0, 0}, {2, 2})});
  EXPECT_EQ(gaps, std::vector<Box>{box({2, 0}, {2, 2})});
}

TEST(Coverage, GapsAreSortedSoTheFirstUncoveredIndexComesFirst) {
  // Columns 0..1 and 3 of rows 0..3 stored; column 2 and row 4 are missing.
  const auto gaps = uncovered(box({0, 0}, {5, 4}), {box({0, 0}, {4, 2}), box({0, 3}, {4, 1})});
  ASSERT_FALSE(gaps.empty());
  EXPECT_EQ(gaps.front().offsets, (std::vector<int64_t>{0, 2}));
  int64_t n = 0;
  for (const Box& g : gaps) n += g.numel();
  EXPECT_EQ(n, 4 + 4);
}

TEST(Coverage, ScalarsAndEmptyRequests) {
  EXPECT_TRUE(uncovered(box({}, {}), {box({}, {})}).empty());
  EXPECT_EQ(uncovered(box({}, {}), {}), std::vector<Box>{box({}, {})});
  EXPECT_TRUE(uncovered(box({3}, {0}), {}).empty());
}

TEST(Coverage, AnotherLayoutsPiecesCoverABoxOfThisLayout) {
  // Written as tensor-parallel column halves plus a shard of three row ranges (q, k, v);
  // read back as one row block of a new layout.
  const int64_t C = 8;
  const std::vector<Box> tp_columns{box({0, 0}, {3 * C, C / 2}), box({0, C / 2}, {3 * C, C / 2})};
  EXPECT_TRUE(uncovered(box({C, 0}, {C, C}), tp_columns).empty());
  const std::vector<Box> qkv_shard{box({0, 0}, {C / 2, C}), box({C, 0}, {C / 2, C}), box({2 * C, 0}, {C / 2, C})};
  const auto gaps = uncovered(box({0, 0}, {3 * C, C}), qkv_shard);
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_EQ(gaps.front(), box({C / 2, 0}, {C / 2, C}));
}

// Oracle: a per-element bitmap over small random shapes.
TEST(Coverage, AgreesWithAnElementBitmap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const int nd = static_cast<int>(rng() % 4);
    Box target;
    for (int d = 0; d < nd; ++d) {
      target.offsets.push_back(static_cast<int64_t>(rng() % 3));
      target.shape.push_back(static_cast<int64_t>(rng() % 5));
    }
    std::vector<Box> pieces(rng() % 6);
    for (Box& p : pieces)
      for (int d = 0; d < nd; ++d) {
        p.offsets.push_back(static_cast<int64_t>(rng() % 7));
        p.shape.push_back(static_cast<int64_t>(rng() % 5));
      }
    const std::vector<Box> gaps = uncovered(target, pieces);
    // Walk every element of target: covered by some piece xor in exactly one gap.
    std::vector<int64_t> idx(target.offsets);
    auto inside = [&](const Box& b) {
      for (int d = 0; d < nd; ++d)
        if (idx[d] < b.offsets[d] || idx[d] >= b.offsets[d] + b.shape[d]) return false;
      return true;
    };
    for (int64_t e = 0; e < target.numel(); ++e) {
      int64_t rem = e;
      for (int d = nd - 1; d >= 0; --d) {
        idx[d] = target.offsets[d] + rem % target.shape[d];
        rem /= target.shape[d];
      }
      bool covered = false;
      for (const Box& p : pieces) covered = covered || inside(p);
      int in_gaps = 0;
      for (const Box& g : gaps) in_gaps += inside(g);
      ASSERT_EQ(in_gaps, covered ? 0 : 1) << "trial " << trial << " element " << e;
    }
    for (const Box& g : gaps) {
      ASSERT_FALSE(g.empty());
      ASSERT_EQ(intersect(g, target), g) << "a gap outside the target, trial " << trial;
    }
  }
}

TEST(Coverage, GptSizedTensorsCostBoxesNotElements) {
  // wte [50257, 768] as 1024-row pieces with one row missing, and c_attn [768, 2304] as a
  // 16 x 16 grid of tiles: a bitmap would touch 38M and 1.7M elements.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Box> rows;
  for (int64_t r = 0; r < 50257; r += 1024) rows.push_back(box({r, 0}, {std::min<int64_t>(1024, 50257 - r), 768}));
  rows[7].shape[0] -= 1;
  const auto gaps = uncovered(box({0, 0}, {50257, 768}), rows);
  EXPECT_EQ(gaps, std::vector<Box>{box({8 * 1024 - 1, 0}, {1, 768})});
  std::vector<Box> tiles;
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j) tiles.push_back(box({i * 48, j * 144}, {48, 144}));
  EXPECT_TRUE(uncovered(box({0, 0}, {768, 2304}), tiles).empty());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
}

}  // namespace
}  // namespace ternion::checkpoint

// ZeRO's flat-buffer arithmetic: buckets in reverse parameter order, padded to a multiple of
// dp, every element of every parameter in exactly one dp rank's range, for thousands of random
// parameter lists, bucket sizes and dp sizes, and the corner cases by name.
#include "parallel/flat_layout.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"

namespace ternion::parallel {
namespace {

void check_invariants(const std::vector<int64_t>& numels, int64_t bucket_elems, int dp) {
  const FlatLayout l(numels, bucket_elems, dp);
  SCOPED_TRACE("params " + std::to_string(numels.size()) + ", bucket " + std::to_string(bucket_elems) + ", dp " +
               std::to_string(dp));
  std::vector<std::vector<int>> hits(numels.size());
  for (size_t k = 0; k < numels.size(); ++k) hits[k].assign(static_cast<size_t>(numels[k]), 0);
  int64_t total = 0;
  int previous_param = static_cast<int>(numels.size());
  for (int b = 0; b < static_cast<int>(l.buckets().size()); ++b) {
    const FlatBucket& bucket = l.buckets()[static_cast<size_t>(b)];
    ASSERT_EQ(bucket.numel % dp, 0) << "bucket " << b;
    ASSERT_GE(bucket.numel, bucket.used);
    ASSERT_LT(bucket.numel - bucket.used, dp) << "padding is less than one element per rank";
    ASSERT_TRUE(bucket.used <= bucket_elems || bucket.params.size() == 1) << "only a lone parameter overflows";
    int64_t at = 0;
    for (const FlatSegment& s : bucket.params) {
      ASSERT_EQ(s.param, previous_param - 1) << "reverse parameter order";
      previous_param = s.param;
      ASSERT_EQ(s.offset, at);
      ASSERT_EQ(s.numel, numels[static_cast<size_t>(s.param)]);
      ASSERT_EQ(l.bucket_of(s.param), b);
      ASSERT_EQ(l.segment_of(s.param), s);
      at += s.numel;
    }
    ASSERT_EQ(at, bucket.used);
    for (int r = 0; r < dp; ++r) {
      const int64_t begin = l.shard_begin(b, r), end = begin + l.shard_size(b);
      for (const FlatSegment& p : l.shard_pieces(b, r)) {
        ASSERT_GE(p.offset, begin);
        ASSERT_LE(p.offset + p.numel, end);
        ASSERT_GT(p.numel, 0);
        const FlatSegment& whole = l.segment_of(p.param);
        ASSERT_EQ(p.offset - whole.offset, p.param_offset);
        for (int64_t i = 0; i < p.numel; ++i) ++hits[static_cast<size_t>(p.param)][static_cast<size_t>(p.param_offset + i)];
      }
    }
    total += bucket.numel;
  }
  ASSERT_EQ(previous_param, 0) << "every parameter is in a bucket";
  for (size_t k = 0; k < hits.size(); ++k)
    for (size_t i = 0; i < hits[k].size(); ++i) ASSERT_EQ(hits[k][i], 1) << "param " << k << " element " << i;
  ASSERT_EQ(l.total_numel(), total);
  ASSERT_EQ(l.shard_numel() * dp, total);
}

TEST(FlatLayout, EveryElementInExactlyOneRankForRandomLists) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int64_t> numels(std::uniform_int_distribution<int>(0, 12)(gen));
    for (auto& n : numels) n = std::uniform_int_distribution<int>(0, 40)(gen);
    const int64_t bucket = std::uniform_int_distribution<int>(1, 100)(gen);
    const int dp = std::uniform_int_distribution<int>(1, 9)(gen);
    check_invariants(numels, bucket, dp);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(FlatLayout, ReverseOrderBucketsAndALargeParameterAlone) {
  const FlatLayout l({3, 5, 100, 2}, 10, 2);
  ASSERT_EQ(l.buckets().size(), 3u);
  EXPECT_EQ(l.bucket_of(3), 0);  // the last parameter's gradient is ready first
  EXPECT_EQ(l.bucket_of(2), 1);  // 100 > 10: a bucket of its own
  EXPECT_EQ(l.bucket_of(1), 2);
  EXPECT_EQ(l.bucket_of(0), 2);
  EXPECT_EQ(l.buckets()[2].used, 8);
  EXPECT_EQ(l.buckets()[0].numel, 2);
}

TEST(FlatLayout, AParameterSplitAcrossRanksAndPadding) {
  const FlatLayout l({7}, 100, 4);  // 7 elements padded to 8: ranks hold 2 each
  ASSERT_EQ(l.buckets().size(), 1u);
  EXPECT_EQ(l.buckets()[0].numel, 8);
  EXPECT_EQ(l.shard_pieces(0, 0), (std::vector<FlatSegment>{{0, 0, 0, 2}}));
  EXPECT_EQ(l.shard_pieces(0, 3), (std::vector<FlatSegment>{{0, 6, 6, 1}})) << "one element, then padding";
}

TEST(FlatLayout, EmptyShards) {
  const FlatLayout l({1}, 100, 4);  // one element padded to 4: ranks 1..3 hold padding only
  EXPECT_EQ(l.shard_size(0), 1);
  EXPECT_EQ(l.shard_pieces(0, 0).size(), 1u);
  for (int r = 1; r < 4; ++r) EXPECT_TRUE(l.shard_pieces(0, r).empty()) << r;
  const FlatLayout none({}, 10, 3);
  EXPECT_EQ(none.total_numel(), 0);
  EXPECT_TRUE(none.buckets().empty());
}

TEST(FlatLayout, BadArgumentsAreNamed) {
  EXPECT_THROW(FlatLayout({1}, 10, 0), Error);
  EXPECT_THROW(FlatLayout({1}, 0, 2), Error);
  EXPECT_THROW(FlatLayout({1, -1}, 10, 2), Error);
}

}  // namespace
}  // namespace ternion::parallel

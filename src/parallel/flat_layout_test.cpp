// ZeRO's flat-buffer arithmetic: buckets in reverse parameter order, padded to a multiple of
// dp, every element of every parameter in exactly one dp rank's range, for thousands of random
// parameter lists, bucket sizes and dp sizes, and the corner cases by name.
#include "parallel/flat_layout.h"

#include <gtest/gtest.h>

#include <random>

#include "autograd/autograd.h"
#include "autograd/ops.h"
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

TEST(FlatLayout, GroupsNeverShareABucket) {
  // Groups {0}, {1, 2}, {3}: the bucket limit would pack everything in one bucket.
  const FlatLayout l({3, 5, 4, 2}, 100, 2, {7, 8, 8, 9});
  ASSERT_EQ(l.buckets().size(), 3u);
  EXPECT_EQ(l.bucket_of(3), 0);
  EXPECT_EQ(l.bucket_of(2), 1);
  EXPECT_EQ(l.bucket_of(1), 1);
  EXPECT_EQ(l.bucket_of(0), 2);
  EXPECT_EQ(l.buckets()[1].used, 9);
  EXPECT_EQ(l.buckets()[1].numel, 10);
  EXPECT_THROW(FlatLayout({1, 2}, 10, 2, {0}), Error);
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

// Parameters moved into flat buffers train the same bits: the forward reads the views, and
// backward accumulates into the gradient buffer in place, across micro-batches, until
// zero_grads.
TEST(FlatBuffers, ViewsTrainTheSameBitsAndAccumulateInTheBuffer) {
  const auto make = [](const Shape& shape, float base) {
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.01f * static_cast<float>(i % 17) - 0.05f;
    Tensor t = Tensor::from_vector(v, shape);
    autograd::set_requires_grad(t);
    return t;
  };
  Tensor w1 = make({5, 3}, 0.3f), b1 = make({5}, 0.1f), w2 = make({2, 5}, -0.2f);
  Tensor r1 = w1.clone(), rb1 = b1.clone(), r2 = w2.clone();
  for (Tensor* t : {&r1, &rb1, &r2}) autograd::set_requires_grad(*t);
  const Tensor x = make({4, 3}, 0.5f);
  const auto loss = [&](const Tensor& a, const Tensor& b, const Tensor& c) {
    Tensor y = autograd::linear(autograd::gelu(autograd::linear(x, a, b)), c);
    return autograd::sum(autograd::mul(y, y));
  };
  FlatBuffers flat({&w1, &b1, &w2}, /*bucket_elems=*/16, /*dp=*/3);  // w2 + b1 in one bucket, w1 alone
  ASSERT_EQ(flat.layout().buckets().size(), 2u);
  EXPECT_EQ(w1.to_vector<float>(), r1.to_vector<float>()) << "values kept";
  EXPECT_TRUE(autograd::is_leaf(w1) && autograd::requires_grad(w1));
  for (int step = 0; step < 2; ++step) {
    for (int micro = 0; micro < 2; ++micro) {
      autograd::backward(loss(w1, b1, w2));
      autograd::backward(loss(r1, rb1, r2));
    }
    for (auto [mine, ref] : {std::pair{&w1, &r1}, {&b1, &rb1}, {&w2, &r2}}) {
      EXPECT_EQ(autograd::grad(*mine).to_vector<float>(), autograd::grad(*ref).to_vector<float>());
      autograd::zero_grad(*ref);
    }
    // The gradients live in the buffer: its segment for w2 is w2's gradient.
    const FlatSegment& s = flat.layout().segment_of(2);
    Tensor in_buffer = flat.grads(flat.layout().bucket_of(2)).slice(0, s.offset, s.offset + s.numel);
    EXPECT_EQ(in_buffer.to_vector<float>(), autograd::grad(w2).contiguous().view({s.numel}).to_vector<float>());
    flat.zero_grads();
    EXPECT_EQ(autograd::grad(w2).to_vector<float>(), std::vector<float>(10, 0.0f)) << "zeroed, still a view";
  }
  // Padding stays zero.
  for (int b = 0; b < 2; ++b) {
    const FlatBucket& bucket = flat.layout().buckets()[static_cast<size_t>(b)];
    for (int64_t i = bucket.used; i < bucket.numel; ++i) {
      EXPECT_EQ(flat.params(b).data<float>()[i], 0.0f);
      EXPECT_EQ(flat.grads(b).data<float>()[i], 0.0f);
    }
  }
}

TEST(FlatBuffers, RefusesTensorsThatAreNotParameters) {
  Tensor plain = Tensor::zeros({3});
  EXPECT_THROW(FlatBuffers({&plain}, 8, 2), Error);
}

}  // namespace
}  // namespace ternion::parallel

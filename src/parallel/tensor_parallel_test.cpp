// Tensor parallelism's collectives as autograd ops under mpirun, the world as the tp group
// (-np 2 and 4): each op's forward and backward against its definition, a column- then
// row-parallel MLP against the one-process MLP, the vocabulary-parallel embedding and
// cross-entropy against the whole-vocabulary ops, with a vocabulary (37) that no group size
// divides, padding rows full of garbage that must never be read, and the bytes each op sends.
#include "parallel/tensor_parallel.h"

#include <gtest/gtest.h>

#include <random>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {
namespace {

using namespace autograd;

Communicator& tp() { return testing::world(); }

// The same values on every rank (seeded by `seed` only).
Tensor random(const Shape& shape, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> dist(0.0f, static_cast<float>(scale));
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_vector(v, shape);
}

Tensor leaf(Tensor t) {
  set_requires_grad(t);
  return t;
}

// a += b, host f32.
void add_into(Tensor& a, const Tensor& b) {
  float* pa = a.data<float>();
  const auto vb = b.contiguous().to_vector<float>();
  for (size_t i = 0; i < vb.size(); ++i) pa[i] += vb[i];
}

// loss = sum(y ⊙ u): the gradient arriving at y is u.
void backward_with(const Tensor& y, const Tensor& u) { backward(sum(mul(y, u))); }

void expect_near(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.numel(), want.numel()) << what << ": " << got.str() << " vs " << want.str();
  const auto g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], tol * (1 + std::abs(w[i]))) << what << " [" << i << "] on rank " << tp().rank();
}

// Rows [r·n/size, (r+1)·n/size) of a [n, C] tensor.
Tensor my_rows(const Tensor& t, int rank, int size) {
  const int64_t n = t.size(0) / size;
  return t.slice(0, rank * n, (rank + 1) * n).contiguous();
}

TEST(TensorParallelOps, CopyToTpForwardIdentityBackwardSum) {
  const int r = tp().rank(), n = tp().size();
  Tensor x = leaf(random({3, 5}, 1));
  Tensor y = copy_to_tp(x, tp());
  expect_near(y, x, 0, "forward");
  const int64_t before = tp().bytes_sent();
  backward_with(y, random({3, 5}, 100 + static_cast<uint64_t>(r)));  // each rank's own upstream
  Tensor want = Tensor::zeros({3, 5});
  for (int q = 0; q < n; ++q) add_into(want, random({3, 5}, 100 + static_cast<uint64_t>(q)));
  expect_near(grad(x), want, 1e-6, "backward is the sum of every rank's gradient");
  EXPECT_EQ(tp().bytes_sent() - before, 2 * (n - 1) * 15 * 4 / n) << "one all-reduce of the gradient";
}

TEST(TensorParallelOps, ReduceFromTpForwardSumBackwardIdentity) {
  const int r = tp().rank(), n = tp().size();
  Tensor x = leaf(random({4, 3}, 10 + static_cast<uint64_t>(r)));
  const int64_t before = tp().bytes_sent();
  Tensor y = reduce_from_tp(x, tp());
  EXPECT_EQ(tp().bytes_sent() - before, 2 * (n - 1) * 12 * 4 / n);
  Tensor want = Tensor::zeros({4, 3});
  for (int q = 0; q < n; ++q) add_into(want, random({4, 3}, 10 + static_cast<uint64_t>(q)));
  expect_near(y, want, 1e-6, "forward");
  Tensor u = random({4, 3}, 7);
  backward_with(y, u);
  expect_near(grad(x), u, 0, "backward passes the gradient through");
  EXPECT_EQ(tp().bytes_sent() - before, 2 * (n - 1) * 12 * 4 / n) << "the backward sends nothing";
}

TEST(TensorParallelOps, ScatterAndGatherAlongTokens) {
  const int r = tp().rank(), n = tp().size();
  const Shape full{2, 4 * n, 3};  // B = 2, T = 4n, C = 3: tokens split in memory order
  Tensor x = leaf(random(full, 3));
  Tensor s = scatter_to_sp(x, tp());
  ASSERT_EQ(s.shape(), (Shape{8, 3}));
  expect_near(s, my_rows(x.view({8 * n, 3}), r, n), 0, "scatter: this rank's tokens");
  Tensor u = random({8, 3}, 50 + static_cast<uint64_t>(r));
  backward_with(s, u);
  std::vector<Tensor> parts;
  for (int q = 0; q < n; ++q) parts.push_back(random({8, 3}, 50 + static_cast<uint64_t>(q)));
  expect_near(grad(x), concat(parts, 0), 0, "scatter's backward gathers every rank's gradient");

  Tensor piece = leaf(my_rows(random({8 * n, 3}, 4), r, n));
  Tensor g = gather_from_sp(piece, full, tp());
  expect_near(g, random({8 * n, 3}, 4), 0, "gather: the whole tensor");
  Tensor U = random(full, 5);  // the same on every rank, as a replicated consumer's
  backward_with(g, U);
  expect_near(grad(piece), my_rows(U.view({8 * n, 3}), r, n), 0, "gather's backward keeps this rank's part");
}

TEST(TensorParallelOps, ReduceScatterAndAllGatherAlongTokens) {
  const int r = tp().rank(), n = tp().size();
  const Shape full{1, 6 * n, 4};
  Tensor x = leaf(random(full, 20 + static_cast<uint64_t>(r)));
  const int64_t before = tp().bytes_sent();
  Tensor s = reduce_scatter_to_sp(x, tp());
  EXPECT_EQ(tp().bytes_sent() - before, (n - 1) * shape_numel(full) * 4 / n);
  Tensor total = Tensor::zeros({6 * n, 4});
  for (int q = 0; q < n; ++q) add_into(total, random({6 * n, 4}, 20 + static_cast<uint64_t>(q)));
  expect_near(s, my_rows(total, r, n), 1e-6, "reduce-scatter: this rank's part of the sum");
  Tensor u = random({6, 4}, 60 + static_cast<uint64_t>(r));
  backward_with(s, u);
  std::vector<Tensor> parts;
  for (int q = 0; q < n; ++q) parts.push_back(random({6, 4}, 60 + static_cast<uint64_t>(q)));
  expect_near(grad(x), concat(parts, 0), 0, "reduce-scatter's backward all-gathers");

  Tensor piece = leaf(my_rows(random({6 * n, 4}, 8), r, n));
  Tensor g = all_gather_from_sp(piece, full, tp());
  expect_near(g, random({6 * n, 4}, 8), 0, "all-gather: the whole tensor");
  backward_with(g, random(full, 70 + static_cast<uint64_t>(r)));  // partial gradients of the whole
  Tensor sum_u = Tensor::zeros({6 * n, 4});
  for (int q = 0; q < n; ++q) add_into(sum_u, random({6 * n, 4}, 70 + static_cast<uint64_t>(q)));
  expect_near(grad(piece), my_rows(sum_u, r, n), 1e-6, "all-gather's backward reduce-scatters");
}

TEST(TensorParallelOps, RefusesTokensThatDoNotSplit) {
  if (tp().size() == 1) GTEST_SKIP();
  Tensor x = random({1, 2 * tp().size() + 1, 3}, 1);
  try {
    scatter_to_sp(x, tp());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not split over the"), std::string::npos) << e.what();
  }
}

// Megatron's MLP: c_fc column-parallel (rows of W1 and b1), c_proj row-parallel (columns of
// W2), b2 added once after the reduction; against the one-process MLP, forward and backward.
TEST(TensorParallelLayers, ColumnThenRowParallelMlpMatchesOneProcess) {
  const int r = tp().rank(), n = tp().size();
  const int64_t C = 6, F = 4 * n * 3;  // F/n rows each
  Tensor x1 = leaf(random({2, 5, C}, 1)), w1 = leaf(random({F, C}, 2, 0.3)), b1 = leaf(random({F}, 3, 0.1));
  Tensor w2 = leaf(random({C, F}, 4, 0.3)), b2 = leaf(random({C}, 5, 0.1));
  Tensor u = random({2, 5, C}, 6);
  backward_with(linear(gelu(linear(x1, w1, b1)), w2, b2), u);

  const int64_t f = F / n;
  Tensor x = leaf(random({2, 5, C}, 1));
  Tensor w1r = leaf(w1.slice(0, r * f, (r + 1) * f).contiguous()), b1r = leaf(b1.slice(0, r * f, (r + 1) * f).contiguous());
  Tensor w2r = leaf(w2.slice(1, r * f, (r + 1) * f).contiguous()), b2r = leaf(random({C}, 5, 0.1));
  Tensor y = add(reduce_from_tp(linear(gelu(linear(copy_to_tp(x, tp()), w1r, b1r)), w2r), tp()), b2r);
  {
    NoGrad no_grad;
    expect_near(y, linear(gelu(linear(x1, w1, b1)), w2, b2), 1e-5, "output");
  }
  backward_with(y, u);
  expect_near(grad(x), grad(x1), 1e-5, "input gradient (all-reduced by copy_to_tp)");
  expect_near(grad(w1r), grad(w1).slice(0, r * f, (r + 1) * f), 1e-5, "c_fc rows");
  expect_near(grad(b1r), grad(b1).slice(0, r * f, (r + 1) * f), 1e-5, "c_fc bias rows");
  expect_near(grad(w2r), grad(w2).slice(1, r * f, (r + 1) * f), 1e-5, "c_proj columns");
  expect_near(grad(b2r), grad(b2), 1e-5, "c_proj bias, whole on every rank");
}

TEST(VocabShard, BalancedPaddedToSixtyFourAndCoveringTheVocabulary) {
  for (int size : {1, 2, 3, 4, 8}) {
    int64_t next = 0;
    for (int rank = 0; rank < size; ++rank) {
      const VocabShard s = vocab_shard(50257, rank, size);
      EXPECT_EQ(s.begin, next);
      next = s.begin + s.count;
      EXPECT_LE(s.count, s.rows);
      if (size > 1) {
        EXPECT_EQ(s.rows % 64, 0);
        EXPECT_LT(s.rows - (50257 + size - 1) / size, 64) << "less than one block of padding";
      }
    }
    EXPECT_EQ(next, 50257) << size;
  }
  EXPECT_EQ(vocab_shard(50257, 0, 2).rows * 2, 50304) << "GPT-2's padded vocabulary at tp = 2";
  EXPECT_EQ(vocab_shard(50257, 0, 1).rows, 50257) << "no padding without tensor parallelism";
  EXPECT_THROW(vocab_shard(3, 0, 4), Error);
}

// This rank's part of a whole [V, C] table or [N, V] logits, padded with garbage.
Tensor padded_part(const Tensor& whole, const VocabShard& s, int dim) {
  Shape shape = whole.shape();
  shape[dim] = s.rows;
  Tensor t = Tensor::full(shape, 1e30);  // never to be read
  t.slice(dim, 0, s.count).copy_(whole.slice(dim, s.begin, s.begin + s.count));
  return t;
}

TEST(VocabParallel, EmbeddingPartsAddUpToTheLookup) {
  const int r = tp().rank(), n = tp().size();
  const int64_t V = 37, C = 5;
  const VocabShard s = vocab_shard(V, r, n);
  std::vector<int32_t> ids{0, 36, 5, 5, 17, 18, 19, 36, 1, 9, 30, 2};
  Tensor idx = Tensor::from_vector(ids, {2, 6});
  Tensor whole = leaf(random({V, C}, 9));
  Tensor u = random({2, 6, C}, 10);
  backward_with(embedding(idx, whole), u);

  Tensor part = leaf(padded_part(whole, s, 0));
  Tensor y = reduce_from_tp(vocab_embedding(idx, part, s.begin, s.count, V), tp());
  {
    NoGrad no_grad;
    expect_near(y, embedding(idx, whole), 0, "the lookup");
  }
  backward_with(y, u);
  expect_near(grad(part).slice(0, 0, s.count), grad(whole).slice(0, s.begin, s.begin + s.count), 1e-6, "rows");
  if (s.rows > s.count) {
    expect_near(grad(part).slice(0, s.count, s.rows), Tensor::zeros({s.rows - s.count, C}), 0, "padding rows");
  }
}

TEST(VocabParallel, CrossEntropyMatchesTheWholeVocabulary) {
  const int r = tp().rank(), n = tp().size();
  const int64_t V = 37, N = 10;
  const VocabShard s = vocab_shard(V, r, n);
  std::vector<int32_t> t{0, 36, 4, 17, 18, 19, 20, 9, 33, 36};
  Tensor targets = Tensor::from_vector(t, {2, 5});
  Tensor whole = leaf(random({2, 5, V}, 11, 3.0));
  Tensor loss1 = cross_entropy(whole, targets);
  backward(scale(loss1, 0.7));

  Tensor part = leaf(padded_part(whole.view({N, V}), s, 1).view({2, 5, s.rows}));
  const int64_t before = tp().bytes_sent();
  Tensor loss = vocab_parallel_cross_entropy(part, targets, s, tp());
  EXPECT_EQ(tp().bytes_sent() - before, 2 * (n - 1) * 3 * N * 4 / n) << "max over N, then the sums of 2N";
  EXPECT_NEAR(loss.item(), loss1.item(), 1e-6 * loss1.item());
  backward(scale(loss, 0.7));
  EXPECT_EQ(tp().bytes_sent() - before, 2 * (n - 1) * 3 * N * 4 / n) << "the backward sends nothing";
  Tensor g = grad(part).view({N, s.rows});
  expect_near(g.slice(1, 0, s.count), grad(whole).view({N, V}).slice(1, s.begin, s.begin + s.count), 1e-6,
              "this rank's columns");
  if (s.rows > s.count) {
    expect_near(g.slice(1, s.count, s.rows), Tensor::zeros({N, s.rows - s.count}), 0, "padding columns");
  }
}

TEST(VocabParallel, CrossEntropyRefusesLogitsOfAnotherWidth) {
  const VocabShard s = vocab_shard(37, tp().rank(), tp().size());
  Tensor logits = Tensor::zeros({4, s.rows + 1});
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3}, {4});
  EXPECT_THROW(vocab_parallel_cross_entropy(logits, targets, s, tp()), Error);
}

}  // namespace
}  // namespace ternion::parallel

// PowerSGD under mpirun, against a straightforward single-process reference of the same
// algorithm (double precision, every rank's matrices simulated on each rank): after each of
// three steps every rank's decompressed gradient, its error buffer and Q agree to 1e-5; Q
// starts equal on every rank; at rank >= min(n, m) the result is the plain average; vectors
// and matrices below the compression rate are averaged exactly; the bytes counted are the
// three all-reduces'.
#include "parallel/powersgd.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "parallel/mpi_test_main.h"

namespace ternion::parallel {
namespace {

Communicator& world() { return testing::world(); }

using Mat = std::vector<std::vector<double>>;  // row-major n × m

Mat zeros(int64_t n, int64_t m) { return Mat(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(m), 0)); }

// Gradient g of rank r at step s: a pure function, so every rank can simulate every other.
Tensor gradient(const Shape& shape, int g, int r, int s) {
  Tensor t = Tensor::empty(shape);
  init_normal(t, 7, "g" + std::to_string(g) + "/r" + std::to_string(r) + "/s" + std::to_string(s), 0.0, 1.0);
  return t;
}

Mat to_mat(const Tensor& t, int64_t n, int64_t m) {
  const auto v = t.contiguous().to_vector<float>();
  Mat a = zeros(n, m);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) a[i][j] = v[static_cast<size_t>(i * m + j)];
  return a;
}

void expect_near(const Tensor& got, const Mat& want, const std::string& what, double tol = 1e-5) {
  const int64_t n = static_cast<int64_t>(want.size()), m = static_cast<int64_t>(want[0].size());
  const auto v = got.contiguous().to_vector<float>();
  ASSERT_EQ(static_cast<int64_t>(v.size()), n * m) << what;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j)
      ASSERT_NEAR(v[static_cast<size_t>(i * m + j)], want[i][j], tol * (1 + std::abs(want[i][j])))
          << what << " [" << i << "," << j << "]";
}

// The reference: N ranks' matrices, one shared Q, each rank's error.
struct Reference {
  int64_t n, m;
  int r;
  Mat q;
  std::vector<Mat> errors;
  Mat average;  // the decompressed result of the last step
  void step(const std::vector<Mat>& ms) {
    const size_t N = ms.size();
    std::vector<Mat> in = ms;
    for (size_t k = 0; k < N; ++k)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) in[k][i][j] += errors[k][i][j];
    Mat p = zeros(n, r);  // Σ_k M_k Q
    for (size_t k = 0; k < N; ++k)
      for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < r; ++c)
          for (int64_t j = 0; j < m; ++j) p[i][c] += in[k][i][j] * q[j][c];
    for (int c = 0; c < r; ++c) {  // Gram-Schmidt on the columns
      double norm = 0;
      for (int64_t i = 0; i < n; ++i) norm += p[i][c] * p[i][c];
      norm = std::sqrt(norm);
      if (norm > 0)
        for (int64_t i = 0; i < n; ++i) p[i][c] /= norm;
      for (int d = c + 1; d < r; ++d) {
        double dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += p[i][c] * p[i][d];
        for (int64_t i = 0; i < n; ++i) p[i][d] -= dot * p[i][c];
      }
    }
    q = zeros(m, r);  // Σ_k M_kᵀ P
    for (size_t k = 0; k < N; ++k)
      for (int64_t j = 0; j < m; ++j)
        for (int c = 0; c < r; ++c)
          for (int64_t i = 0; i < n; ++i) q[j][c] += in[k][i][j] * p[i][c];
    average = zeros(n, m);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        for (int c = 0; c < r; ++c) average[i][j] += p[i][c] * q[j][c] / static_cast<double>(N);
    for (size_t k = 0; k < N; ++k)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) errors[k][i][j] = in[k][i][j] - average[i][j];
  }
};

TEST(PowerSgd, MatchesTheSingleProcessReferenceForThreeSteps) {
  const int N = world().size(), me = world().rank();
  // Compressed at rank 2: [12, 10] (rate 120/44 = 2.7) and [3, 4, 5] (a [3, 20] matrix,
  // rate 60/46 < 2 at rank 2... so min rate 1 below); a vector and a [2, 2] stay exact.
  const std::vector<Shape> shapes{{12, 10}, {3, 4, 5}, {7}, {2, 2}};
  PowerSgdOptions o;
  o.rank = 2;
  o.min_compression_rate = 1.2;
  PowerSgd psgd(world(), {"a", "b", "v", "small"}, shapes, DType::f32, Device::cpu(), o, 11);
  ASSERT_TRUE(psgd.compressed(0));
  ASSERT_TRUE(psgd.compressed(1));
  EXPECT_FALSE(psgd.compressed(2)) << "a vector";
  EXPECT_FALSE(psgd.compressed(3)) << "4 / (4 · 2) is below the rate";
  std::vector<Reference> ref;
  for (size_t g = 0; g < 2; ++g) {
    const int64_t n = shapes[g][0], m = shape_numel(shapes[g]) / n;
    // Q is the same on every rank.
    Tensor all = Tensor::empty({N * m * 2});
    world().all_gather(psgd.q(g).contiguous().view({m * 2}), all);
    for (int k = 1; k < N; ++k)
      for (int64_t i = 0; i < m * 2; ++i) ASSERT_EQ(all.data<float>()[k * m * 2 + i], all.data<float>()[i]);
    ref.push_back({n, m, 2, to_mat(psgd.q(g), m, 2), std::vector<Mat>(static_cast<size_t>(N), zeros(n, m)), {}});
  }
  for (int s = 0; s < 3; ++s) {
    std::vector<Tensor> grads;
    for (size_t g = 0; g < shapes.size(); ++g) grads.push_back(gradient(shapes[g], static_cast<int>(g), me, s));
    psgd.reduce(grads);
    for (size_t g = 0; g < 2; ++g) {
      std::vector<Mat> ms;
      for (int k = 0; k < N; ++k) ms.push_back(to_mat(gradient(shapes[g], static_cast<int>(g), k, s), ref[g].n, ref[g].m));
      ref[g].step(ms);
      const std::string what = "step " + std::to_string(s + 1) + " gradient " + psgd.name(g);
      expect_near(grads[g], ref[g].average, what + " (decompressed average)");
      expect_near(psgd.error(g), ref[g].errors[static_cast<size_t>(me)], what + " (error)");
      expect_near(psgd.q(g), ref[g].q, what + " (Q)");
    }
    for (size_t g = 2; g < 4; ++g) {  // exact averages
      const int64_t n = shapes[g][0], m = shape_numel(shapes[g]) / n;
      Mat avg = zeros(n, m);
      for (int k = 0; k < N; ++k) {
        const Mat x = to_mat(gradient(shapes[g], static_cast<int>(g), k, s), n, m);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < m; ++j) avg[i][j] += x[i][j] / N;
      }
      expect_near(grads[g], avg, "uncompressed " + psgd.name(g));
    }
  }
}

TEST(PowerSgd, FullRankIsThePlainAverageAndTheBytesAreThreeAllReduces) {
  const int N = world().size(), me = world().rank();
  const std::vector<Shape> shapes{{16, 6}, {5, 9}, {8}};
  PowerSgdOptions o;
  o.rank = 9;  // >= min(n, m) for both: r' = 6 and 5
  o.min_compression_rate = 0;
  PowerSgd psgd(world(), {"x", "y", "z"}, shapes, DType::f32, Device::cpu(), o, 3);
  EXPECT_EQ(psgd.low_rank_elements(), 6 * (16 + 6) + 5 * (5 + 9));
  EXPECT_EQ(psgd.uncompressed_elements(), 8);
  for (int s = 0; s < 2; ++s) {
    std::vector<Tensor> grads;
    for (size_t g = 0; g < shapes.size(); ++g) grads.push_back(gradient(shapes[g], static_cast<int>(g), me, s));
    const int64_t before = world().bytes_sent();
    psgd.reduce(grads);
    const auto ar = [N](int64_t elems) { return 2 * (N - 1) * elems * 4 / N; };
    EXPECT_EQ(world().bytes_sent() - before, ar(8) + ar(6 * 16 + 5 * 5) + ar(6 * 6 + 5 * 9));
    for (size_t g = 0; g < shapes.size(); ++g) {
      const int64_t n = shapes[g][0], m = shape_numel(shapes[g]) / n;
      Mat avg = zeros(n, m);
      for (int k = 0; k < N; ++k) {
        const Mat x = to_mat(gradient(shapes[g], static_cast<int>(g), k, s), n, m);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < m; ++j) avg[i][j] += x[i][j] / N;
      }
      // f32 through a random (possibly ill-conditioned) Q: 1e-4, not bit-exact.
      expect_near(grads[g], avg, "full rank " + psgd.name(g) + " step " + std::to_string(s + 1), 1e-4);
    }
  }
}

// Groups launched one by one (as backward makes them final) give the values of one batched
// reduce: each matrix's arithmetic is its own. Bytes: three all-reduces per group that has
// both parts. Launching out of order is refused.
TEST(PowerSgd, GroupsGiveTheSameValuesAsOneBatch) {
  const int me = world().rank();
  const std::vector<Shape> shapes{{12, 10}, {7}, {3, 4, 5}, {9, 8}, {6}};
  PowerSgdOptions o;
  o.rank = 2;
  o.min_compression_rate = 1.2;
  PowerSgd one(world(), {"a", "v", "b", "c", "w"}, shapes, DType::f32, Device::cpu(), o, 5);
  PowerSgd grouped(world(), {"a", "v", "b", "c", "w"}, shapes, DType::f32, Device::cpu(), o, 5,
                   {{4, 3}, {2, 1}, {0}});
  ASSERT_EQ(grouped.num_groups(), 3u);
  for (int s = 0; s < 3; ++s) {
    std::vector<Tensor> a, b;
    for (size_t g = 0; g < shapes.size(); ++g) {
      a.push_back(gradient(shapes[g], static_cast<int>(g), me, s));
      b.push_back(gradient(shapes[g], static_cast<int>(g), me, s));
    }
    one.reduce(a);
    grouped.begin();
    for (size_t g = 0; g < grouped.num_groups(); ++g) {
      std::vector<Tensor> mine;
      for (const int i : grouped.group(g)) mine.push_back(b[static_cast<size_t>(i)]);
      grouped.launch(g, mine);
    }
    grouped.end();
    for (size_t g = 0; g < shapes.size(); ++g) {
      const std::string what = "step " + std::to_string(s + 1) + " " + one.name(g);
      const int64_t n = shapes[g][0], m = shape_numel(shapes[g]) / n;
      expect_near(b[g], to_mat(a[g], n, m), what, 1e-6);
      if (one.compressed(g)) expect_near(grouped.error(g), to_mat(one.error(g), n, m), what + " error", 1e-6);
    }
  }
  grouped.begin();
  EXPECT_THROW(grouped.launch(1, {gradient(shapes[2], 2, me, 9), gradient(shapes[1], 1, me, 9)}), Error);
}

}  // namespace
}  // namespace ternion::parallel

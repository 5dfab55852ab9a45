// CPU kernels against naive scalar references (forward) and central finite differences
// in f64 (backward); thread-count independence; index and dtype errors; empty tensors.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace ternion::kernels::cpu {
namespace {

using Vec = std::vector<double>;

Vec randn(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  Vec v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

Tensor make(const Vec& v, const Shape& shape, DType dt = DType::f64) {
  return Tensor::from_vector<double>(v, shape).to(dt);
}

Vec get(const Tensor& t) { return t.to_vector<double>(); }

void expect_near(const Vec& got, const Vec& want, double tol, const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << what << " at " << i;
  }
}

// d/dx of f at x by central differences, f64.
Vec fd_grad(const std::function<double(const Vec&)>& f, Vec x, double h = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---------------------------------------------------------------- gemm

struct GemmCase {
  int64_t ba, bb, batch, M, N, K;
};

void check_gemm(const GemmCase& g, bool ta, bool tb, DType dt, double tol) {
  const Shape sa = ta ? Shape{g.ba, g.K, g.M} : Shape{g.ba, g.M, g.K};
  const Shape sb = tb ? Shape{g.bb, g.N, g.K} : Shape{g.bb, g.K, g.N};
  const Vec va = randn(shape_numel(sa), 1), vb = randn(shape_numel(sb), 2);
  const Vec vc = randn(g.batch * g.M * g.N, 3);
  const double alpha = 0.7, beta = 0.3;
  Tensor c = make(vc, {g.batch, g.M, g.N}, dt);
  gemm(make(va, sa, dt), ta, make(vb, sb, dt), tb, c, alpha, beta);
  Vec want(vc.size());
  for (int64_t b = 0; b < g.batch; ++b) {
    const int64_t ia = g.ba == 1 ? 0 : b, ib = g.bb == 1 ? 0 : b;
    for (int64_t i = 0; i < g.M; ++i) {
      for (int64_t j = 0; j < g.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < g.K; ++k) {
          const double x = ta ? va[(ia * g.K + k) * g.M + i] : va[(ia * g.M + i) * g.K + k];
          const double y = tb ? vb[(ib * g.N + j) * g.K + k] : vb[(ib * g.K + k) * g.N + j];
          s += x * y;
        }
        const int64_t o = (b * g.M + i) * g.N + j;
        want[o] = alpha * s + beta * vc[o];
      }
    }
  }
  expect_near(get(c), want, tol,
              "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " ba=" +
                  std::to_string(g.ba) + " bb=" + std::to_string(g.bb));
}

TEST(Gemm, AllTransposesAndBroadcasts) {
  const std::vector<GemmCase> cases = {
      {1, 1, 1, 5, 3, 7}, {3, 3, 3, 5, 3, 7}, {1, 3, 3, 5, 3, 7},
      {3, 1, 3, 5, 3, 7}, {1, 1, 3, 4, 6, 2}, {2, 2, 2, 33, 17, 65}};
  for (const auto& g : cases) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        check_gemm(g, ta, tb, DType::f64, 1e-12);
        check_gemm(g, ta, tb, DType::f32, 1e-5);
      }
    }
  }
}

TEST(Gemm, EmptyInnerDimScalesByBeta) {
  Tensor c = make({1, 2, 3, 4}, {1, 2, 2});
  // Tensor::empty, not zeros: core's zero_() rejects [1, 2, 0] as non-contiguous.
  gemm(Tensor::empty({1, 2, 0}, DType::f64), false, Tensor::empty({1, 0, 2}, DType::f64), false, c,
       1.0, 0.5);
  expect_near(get(c), {0.5, 1, 1.5, 2}, 0);
  Tensor e = Tensor::empty({2, 0, 3}, DType::f32);
  gemm(Tensor::empty({2, 0, 4}), false, Tensor::zeros({1, 4, 3}), false, e, 1.0, 0.0);
}

// ---------------------------------------------------------------- elementwise

TEST(Elementwise, AddMulBroadcastAxpby) {
  const Vec a = randn(24, 4), b = randn(8, 5), b_full = randn(24, 6);
  Tensor out = Tensor::empty({6, 4}, DType::f64);
  Vec want_add(24), want_mul(24), want_axpby(24);
  for (int i = 0; i < 24; ++i) {
    want_add[i] = a[i] + b[i % 8];
    want_mul[i] = a[i] * b[i % 8];
    want_axpby[i] = 2.0 * a[i] - 0.5 * b_full[i];
  }
  add(make(a, {6, 4}), make(b, {2, 4}), out);
  expect_near(get(out), want_add, 1e-15, "add");
  mul(make(a, {6, 4}), make(b, {2, 4}), out);
  expect_near(get(out), want_mul, 1e-15, "mul");
  axpby(2.0, make(a, {6, 4}), -0.5, make(b_full, {6, 4}), out);
  expect_near(get(out), want_axpby, 1e-15, "axpby");
  axpby(3.0, make(a, {6, 4}), 0.0, Tensor(), out);
  for (int i = 0; i < 24; ++i) want_axpby[i] = 3.0 * a[i];
  expect_near(get(out), want_axpby, 1e-15, "axpby beta=0");
  Tensor out32 = Tensor::empty({6, 4}, DType::f32);
  add(make(a, {6, 4}, DType::f32), make(b, {2, 4}, DType::f32), out32);
  expect_near(get(out32), want_add, 1e-6, "add f32");
}

TEST(Elementwise, SumRowsAccumulatesAndSumAll) {
  const Vec a = randn(6 * 300, 7);
  Tensor out = make(Vec(2 * 300, 1.0), {2, 300});
  sum_rows(make(a, {6, 300}), out);
  Vec want(600, 1.0);
  for (int i = 0; i < 1800; ++i) want[i % 600] += a[i];
  expect_near(get(out), want, 1e-13, "sum_rows");

  Tensor s = Tensor::scalar(0.0, DType::f64);
  sum_all(make(a, {1800}, DType::f32), s);
  double ref = 0;
  for (double x : make(a, {1800}, DType::f32).to_vector<double>()) ref += x;
  EXPECT_NEAR(s.item(), ref, 1e-10);
  sum_all(Tensor::empty({5, 0}), s);
  EXPECT_EQ(s.item(), 0.0);
}

TEST(Determinism, SumAllAndLayernormBackwardIndependentOfThreads) {
  const int saved = omp_get_max_threads();
  const Vec big = randn(100003, 8);
  const Tensor x = make(big, {100003}, DType::f32);
  const int64_t N = 257, C = 300;
  const Vec xv = randn(N * C, 9), wv = randn(C, 10), dyv = randn(N * C, 11);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Tensor s = Tensor::scalar(0.0, DType::f32);
    sum_all(x, s);
    Tensor xt = make(xv, {N, C}, DType::f32), wt = make(wv, {C}, DType::f32);
    Tensor y = Tensor::empty({N, C}), mean = Tensor::empty({N}), rstd = Tensor::empty({N});
    layernorm_forward(xt, wt, Tensor::zeros({C}), 1e-5, y, mean, rstd);
    Tensor dx = Tensor::empty({N, C}), dw = Tensor::zeros({C}), db = Tensor::zeros({C});
    layernorm_backward(xt, wt, mean, rstd, make(dyv, {N, C}, DType::f32), dx, dw, db);
    return std::vector<std::vector<float>>{s.to_vector<float>(), dx.to_vector<float>(),
                                           dw.to_vector<float>(), db.to_vector<float>()};
  };
  const auto one = run(1), two = run(2);
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], two[i]) << "output " << i;
}

// ---------------------------------------------------------------- embedding

TEST(Embedding, ForwardBackwardWithRepeatedIds) {
  const int64_t V = 5, C = 70;
  const Vec w = randn(V * C, 12), dout = randn(4 * C, 13);
  for (DType idt : {DType::i32, DType::i64}) {
    const Tensor idx = Tensor::from_vector<int64_t>({3, 0, 3, 4}, {4}).to(idt);
    Tensor out = Tensor::empty({4, C}, DType::f64);
    embedding_forward(idx, make(w, {V, C}), out);
    const int64_t ids[] = {3, 0, 3, 4};
    Vec want(4 * C), want_dw(V * C, 1.0);
    for (int n = 0; n < 4; ++n) {
      for (int c = 0; c < C; ++c) {
        want[n * C + c] = w[ids[n] * C + c];
        want_dw[ids[n] * C + c] += dout[n * C + c];
      }
    }
    expect_near(get(out), want, 0, "embedding_forward");
    Tensor dw = make(Vec(V * C, 1.0), {V, C});
    embedding_backward(idx, make(dout, {4, C}), dw);
    expect_near(get(dw), want_dw, 1e-15, "embedding_backward");
  }
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

TEST(Errors, OutOfRangeIdsAndBadDtypes) {
  Tensor w = Tensor::zeros({5, 3}), out = Tensor::empty({2, 3});
  expect_error([&] { embedding_forward(Tensor::from_vector<int32_t>({1, 7}, {2}), w, out); },
               {"[embedding_forward]", "7", "V=5"});
  expect_error([&] { embedding_backward(Tensor::from_vector<int64_t>({-1, 0}, {2}), out, w); },
               {"[embedding_backward]", "-1", "V=5"});
  Tensor lse = Tensor::empty({2}), loss = Tensor::scalar(0.0);
  expect_error(
      [&] { cross_entropy_forward(Tensor::zeros({2, 5}), Tensor::from_vector<int64_t>({0, 5}, {2}),
                                  lse, loss); },
      {"[cross_entropy_forward]", "5", "V=5"});
  Tensor dl = Tensor::empty({2, 5});
  expect_error(
      [&] { cross_entropy_backward(Tensor::zeros({2, 5}), Tensor::from_vector<int32_t>({9, 0}, {2}),
                                   lse, 1.0, dl); },
      {"[cross_entropy_backward]", "9", "V=5"});
  Tensor xi = Tensor::zeros({4}, DType::i32), yi = Tensor::zeros({4}, DType::i32);
  expect_error([&] { gelu_forward(xi, yi); }, {"[gelu_forward]", "i32"});
}

// ---------------------------------------------------------------- layernorm

TEST(LayerNorm, ForwardMatchesNaiveAndBackwardMatchesFiniteDifferences) {
  const int64_t N = 5, C = 7;
  const double eps = 1e-5;
  const Vec x = randn(N * C, 14, 2.0), w = randn(C, 15), b = randn(C, 16), r = randn(N * C, 17);
  auto forward = [&](const Vec& xv, const Vec& wv, const Vec& bv, Vec* mean, Vec* rstd) {
    Vec y(N * C);
    for (int64_t n = 0; n < N; ++n) {
      double m = 0, v = 0;
      for (int64_t c = 0; c < C; ++c) m += xv[n * C + c] / C;
      for (int64_t c = 0; c < C; ++c) v += (xv[n * C + c] - m) * (xv[n * C + c] - m) / C;
      const double rs = 1 / std::sqrt(v + eps);
      if (mean) (*mean)[n] = m;
      if (rstd) (*rstd)[n] = rs;
      for (int64_t c = 0; c < C; ++c) y[n * C + c] = (xv[n * C + c] - m) * rs * wv[c] + bv[c];
    }
    return y;
  };
  Vec want_mean(N), want_rstd(N);
  const Vec want_y = forward(x, w, b, &want_mean, &want_rstd);
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    Tensor y = Tensor::empty({N, C}, dt), mean = Tensor::empty({N}, dt), rstd = Tensor::empty({N}, dt);
    layernorm_forward(make(x, {N, C}, dt), make(w, {C}, dt), make(b, {C}, dt), eps, y, mean, rstd);
    expect_near(get(y), want_y, tol, "y");
    expect_near(get(mean), want_mean, tol, "mean");
    expect_near(get(rstd), want_rstd, tol, "rstd");
  }
  // Backward in f64 against d(sum(y * r)).
  Tensor y = Tensor::empty({N, C}, DType::f64), mean = Tensor::empty({N}, DType::f64),
         rstd = Tensor::empty({N}, DType::f64);
  layernorm_forward(make(x, {N, C}), make(w, {C}), make(b, {C}), eps, y, mean, rstd);
  Tensor dx = Tensor::empty({N, C}, DType::f64);
  Tensor dw = make(Vec(C, 1.0), {C}), db = make(Vec(C, 1.0), {C});
  layernorm_backward(make(x, {N, C}), make(w, {C}), mean, rstd, make(r, {N, C}), dx, dw, db);
  auto loss_x = [&](const Vec& xv) { return dot(forward(xv, w, b, nullptr, nullptr), r); };
  auto loss_w = [&](const Vec& wv) { return dot(forward(x, wv, b, nullptr, nullptr), r); };
  auto loss_b = [&](const Vec& bv) { return dot(forward(x, w, bv, nullptr, nullptr), r); };
  expect_near(get(dx), fd_grad(loss_x, x), 1e-6, "dx");
  Vec gw = fd_grad(loss_w, w), gb = fd_grad(loss_b, b);
  for (auto& v : gw) v += 1.0;  // += onto ones
  for (auto& v : gb) v += 1.0;
  expect_near(get(dw), gw, 1e-6, "dw");
  expect_near(get(db), gb, 1e-6, "db");
}

TEST(LayerNorm, EmptyRows) {
  Tensor x = Tensor::zeros({0, 4}), w = Tensor::zeros({4}), y = Tensor::empty({0, 4});
  Tensor mean = Tensor::empty({0}), rstd = Tensor::empty({0});
  layernorm_forward(x, w, w, 1e-5, y, mean, rstd);
  Tensor dx = Tensor::empty({0, 4}), dw = Tensor::zeros({4}), db = Tensor::zeros({4});
  layernorm_backward(x, w, mean, rstd, x, dx, dw, db);
  EXPECT_EQ(dw.to_vector<float>(), std::vector<float>(4, 0.0f));
}

// ---------------------------------------------------------------- exp, gelu, softmax

TEST(VecMath, ExpF32WithinTwoUlpAndEdgeCases) {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.000731f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(detail::exp_f32(x) - want) / want);
  }
  EXPECT_LT(worst, 2 * 0x1p-23);
  EXPECT_EQ(detail::exp_f32(-INFINITY), 0.0f);
  EXPECT_EQ(detail::exp_f32(-1000.0f), 0.0f);
  EXPECT_EQ(detail::exp_f32(0.0f), 1.0f);
  EXPECT_EQ(detail::exp_f32(INFINITY), INFINITY);
  EXPECT_EQ(detail::exp_f32(1000.0f), INFINITY);
  EXPECT_TRUE(std::isnan(detail::exp_f32(NAN)));
}

double gelu_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

TEST(Gelu, ForwardAndBackward) {
  const Vec x = randn(40, 18, 2.0), dy = randn(40, 19);
  Vec want(40);
  for (int i = 0; i < 40; ++i) want[i] = gelu_ref(x[i]);
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor y = Tensor::empty({5, 8}, dt);
    gelu_forward(make(x, {5, 8}, dt), y);
    expect_near(get(y), want, dt == DType::f64 ? 1e-14 : 1e-6, "gelu");
  }
  // Saturation: no NaN from e^-2u overflowing.
  Tensor ext = make({-1e4, -50, 50, 1e4}, {4}, DType::f32), ey = Tensor::empty({4});
  gelu_forward(ext, ey);
  expect_near(get(ey), {0, 0, 50, 1e4}, 1e-6, "gelu saturation");
  Tensor edx = Tensor::empty({4});
  gelu_backward(ext, Tensor::full({4}, 1.0), edx);
  expect_near(get(edx), {0, 0, 1, 1}, 1e-6, "gelu_backward saturation");
  Tensor dx = Tensor::empty({40}, DType::f64);
  gelu_backward(make(x, {40}), make(dy, {40}), dx);
  Vec want_dx(40);
  for (int i = 0; i < 40; ++i) {
    want_dx[i] = dy[i] * (gelu_ref(x[i] + 1e-6) - gelu_ref(x[i] - 1e-6)) / 2e-6;
  }
  expect_near(get(dx), want_dx, 1e-7, "gelu_backward");
}

Vec softmax_ref(const Vec& x, int64_t N, int64_t C) {
  Vec y(N * C);
  for (int64_t n = 0; n < N; ++n) {
    double mx = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[n * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(x[n * C + c] - mx);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = std::exp(x[n * C + c] - mx) / s;
  }
  return y;
}

TEST(Softmax, ForwardAndBackward) {
  const int64_t N = 6, C = 9;
  const Vec x = randn(N * C, 20, 3.0), r = randn(N * C, 21);
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor y = Tensor::empty({2, 3, C}, dt);
    softmax_forward(make(x, {2, 3, C}, dt), y);
    expect_near(get(y), softmax_ref(x, N, C), dt == DType::f64 ? 1e-14 : 1e-6, "softmax");
  }
  Tensor y = Tensor::empty({N, C}, DType::f64), dx = Tensor::empty({N, C}, DType::f64);
  softmax_forward(make(x, {N, C}), y);
  softmax_backward(y, make(r, {N, C}), dx);
  expect_near(get(dx), fd_grad([&](const Vec& v) { return dot(softmax_ref(v, N, C), r); }, x),
              1e-7, "softmax_backward");
  Tensor e = Tensor::empty({3, 0});
  softmax_forward(e, e);
}

// ---------------------------------------------------------------- attention

// out and row log-sum-exp of naive causal attention on [BH,T,D] data.
void attention_ref(const Vec& q, const Vec& k, const Vec& v, int64_t BH, int64_t T, int64_t D,
                   Vec* out, Vec* lse) {
  out->assign(BH * T * D, 0.0);
  lse->assign(BH * T, 0.0);
  for (int64_t h = 0; h < BH; ++h) {
    for (int64_t i = 0; i < T; ++i) {
      Vec s(i + 1);
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double d = 0;
        for (int64_t c = 0; c < D; ++c) d += q[(h * T + i) * D + c] * k[(h * T + j) * D + c];
        s[j] = d / std::sqrt(static_cast<double>(D));
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
      (*lse)[h * T + i] = mx + std::log(sum);
      for (int64_t j = 0; j <= i; ++j) {
        const double p = std::exp(s[j] - mx) / sum;
        for (int64_t c = 0; c < D; ++c) (*out)[(h * T + i) * D + c] += p * v[(h * T + j) * D + c];
      }
    }
  }
}

TEST(Attention, CausalForwardAndBackward) {
  const int64_t B = 2, H = 3, T = 5, D = 4, n = B * H * T * D;
  const Vec q = randn(n, 22), k = randn(n, 23), v = randn(n, 24), r = randn(n, 25);
  Vec want_out, want_lse;
  attention_ref(q, k, v, B * H, T, D, &want_out, &want_lse);
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor out = Tensor::empty({B, H, T, D}, dt), lse = Tensor::empty({B, H, T}, dt);
    attention_forward(make(q, {B, H, T, D}, dt), make(k, {B, H, T, D}, dt),
                      make(v, {B, H, T, D}, dt), out, lse);
    const double tol = dt == DType::f64 ? 1e-13 : 1e-5;
    expect_near(get(out), want_out, tol, "out");
    expect_near(get(lse), want_lse, tol, "lse");
  }
  const Shape s = {B, H, T, D};
  Tensor out = Tensor::empty(s, DType::f64), lse = Tensor::empty({B, H, T}, DType::f64);
  attention_forward(make(q, s), make(k, s), make(v, s), out, lse);
  Tensor dq = Tensor::empty(s, DType::f64), dk = Tensor::empty(s, DType::f64),
         dv = Tensor::empty(s, DType::f64);
  attention_backward(make(q, s), make(k, s), make(v, s), out, lse, make(r, s), dq, dk, dv);
  auto loss = [&](const Vec& qv, const Vec& kv, const Vec& vv) {
    Vec o, l;
    attention_ref(qv, kv, vv, B * H, T, D, &o, &l);
    return dot(o, r);
  };
  expect_near(get(dq), fd_grad([&](const Vec& x) { return loss(x, k, v); }, q), 1e-7, "dq");
  expect_near(get(dk), fd_grad([&](const Vec& x) { return loss(q, x, v); }, k), 1e-7, "dk");
  expect_near(get(dv), fd_grad([&](const Vec& x) { return loss(q, k, x); }, v), 1e-7, "dv");
}

// Several query blocks, the last one partial: the blocked kernels against dense formulas.
TEST(Attention, BlocksMatchDenseReference) {
  const int64_t BH = 2, T = 150, D = 8, n = BH * T * D;
  const Vec q = randn(n, 32), k = randn(n, 33), v = randn(n, 34), r = randn(n, 35);
  Vec out, lse;
  attention_ref(q, k, v, BH, T, D, &out, &lse);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Vec dq(n, 0.0), dk(n, 0.0), dv(n, 0.0);
  for (int64_t h = 0; h < BH; ++h) {
    const int64_t o = h * T * D;
    for (int64_t i = 0; i < T; ++i) {
      Vec p(i + 1), ds(i + 1);
      double rowdot = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0, dp = 0;
        for (int64_t c = 0; c < D; ++c) {
          s += q[o + i * D + c] * k[o + j * D + c];
          dp += r[o + i * D + c] * v[o + j * D + c];
        }
        p[j] = std::exp(s * scale - lse[h * T + i]);
        ds[j] = dp;
        rowdot += p[j] * dp;
      }
      for (int64_t j = 0; j <= i; ++j) {
        ds[j] = p[j] * (ds[j] - rowdot) * scale;
        for (int64_t c = 0; c < D; ++c) {
          dv[o + j * D + c] += p[j] * r[o + i * D + c];
          dq[o + i * D + c] += ds[j] * k[o + j * D + c];
          dk[o + j * D + c] += ds[j] * q[o + i * D + c];
        }
      }
    }
  }
  for (DType dt : {DType::f64, DType::f32}) {
    const Shape s = {1, BH, T, D};
    const double tol = dt == DType::f64 ? 1e-12 : 2e-5;
    const Tensor tq = make(q, s, dt), tk = make(k, s, dt), tv = make(v, s, dt);
    Tensor to = Tensor::empty(s, dt), tl = Tensor::empty({1, BH, T}, dt);
    attention_forward(tq, tk, tv, to, tl);
    expect_near(get(to), out, tol, "out");
    expect_near(get(tl), lse, tol, "lse");
    Tensor tdq = Tensor::empty(s, dt), tdk = Tensor::empty(s, dt), tdv = Tensor::empty(s, dt);
    attention_backward(tq, tk, tv, to, tl, make(r, s, dt), tdq, tdk, tdv);
    expect_near(get(tdq), dq, 10 * tol, "dq");
    expect_near(get(tdk), dk, 10 * tol, "dk");
    expect_near(get(tdv), dv, 10 * tol, "dv");
  }
}

// ---------------------------------------------------------------- cross-entropy

TEST(CrossEntropy, ForwardAndBackward) {
  const int64_t N = 6, V = 11;
  const Vec logits = randn(N * V, 26, 3.0);
  const std::vector<int64_t> tgt = {0, 10, 3, 3, 7, 1};
  double want_loss = 0;
  Vec want_lse(N), want_d(N * V);
  const double dloss = 0.8;
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(logits[n * V + j]);
    want_lse[n] = std::log(s);
    want_loss += (want_lse[n] - logits[n * V + tgt[n]]) / N;
    for (int64_t j = 0; j < V; ++j) {
      want_d[n * V + j] = dloss / N * (std::exp(logits[n * V + j]) / s - (j == tgt[n] ? 1 : 0));
    }
  }
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-13 : 1e-5;
    const Tensor lt = make(logits, {N, V}, dt);
    const Tensor t = Tensor::from_vector<int64_t>(tgt, {N}).to(DType::i32);
    Tensor lse = Tensor::empty({N}, dt), loss = Tensor::scalar(0.0, dt);
    cross_entropy_forward(lt, t, lse, loss);
    expect_near(get(lse), want_lse, tol, "lse");
    EXPECT_NEAR(loss.item(), want_loss, tol);
    Tensor d = Tensor::empty({N, V}, dt);
    cross_entropy_backward(lt, t, lse, dloss, d);
    expect_near(get(d), want_d, tol, "dlogits");
  }
  Tensor lse = Tensor::empty({0}), loss = Tensor::scalar(5.0);
  cross_entropy_forward(Tensor::zeros({0, V}), Tensor::zeros({0}, DType::i64), lse, loss);
  EXPECT_EQ(loss.item(), 0.0);
}

// ---------------------------------------------------------------- vocabulary-parallel

// Rank r of `parts` holds ids [V*r/parts, V*(r+1)/parts) of V (src/parallel's vocab_shard),
// stored in a table of Vl = ceil(V/parts) + 2 rows: every part has padding, and that
// padding holds kGarbage, so any read of it shows in a result.
struct VocabPart {
  int64_t begin, count;
};
constexpr int64_t kVocab = 37;  // a multiple of neither 2 nor 3
constexpr double kGarbage = 1e30;

std::vector<VocabPart> split_vocab(int64_t V, int64_t parts) {
  std::vector<VocabPart> out;
  for (int64_t r = 0; r < parts; ++r) {
    out.push_back({V * r / parts, V * (r + 1) / parts - V * r / parts});
  }
  return out;
}
int64_t padded_rows(int64_t V, int64_t parts) { return (V + parts - 1) / parts + 2; }

// Columns [begin, begin+count) of the rows of whole[rows, V], padded with `pad` to Vl columns.
Vec part_columns(const Vec& whole, int64_t rows, int64_t V, VocabPart p, int64_t Vl, double pad) {
  Vec out(static_cast<size_t>(rows * Vl), pad);
  for (int64_t n = 0; n < rows; ++n) {
    for (int64_t v = 0; v < p.count; ++v) out[n * Vl + v] = whole[n * V + p.begin + v];
  }
  return out;
}
// Rows [begin, begin+count) of whole[V, C], padded with `pad` to Vl rows.
Vec part_rows(const Vec& whole, int64_t C, VocabPart p, int64_t Vl, double pad) {
  Vec out(static_cast<size_t>(Vl * C), pad);
  std::copy(whole.begin() + p.begin * C, whole.begin() + (p.begin + p.count) * C, out.begin());
  return out;
}

TEST(VocabEmbedding, PartsSumToTheWholeTable) {
  const int64_t V = kVocab, C = 70, N = 53;  // C > 64: two column blocks in the backward
  std::vector<int64_t> ids = {0, V - 1, 18, 19, 12, 13, 24, 25, 18, 0};  // edges of the parts
  std::mt19937 gen(40);
  std::uniform_int_distribution<int64_t> any_id(0, V - 1);
  while (static_cast<int64_t>(ids.size()) < N) ids.push_back(any_id(gen));
  const Vec w = randn(V * C, 41), dout = randn(N * C, 42);
  for (DType dt : {DType::f64, DType::f32}) {
    for (DType idt : {DType::i32, DType::i64}) {
      const Tensor idx = Tensor::from_vector<int64_t>(ids, {N}).to(idt);
      Tensor whole_out = Tensor::empty({N, C}, dt), whole_dw = make(Vec(V * C, 1.0), {V, C}, dt);
      embedding_forward(idx, make(w, {V, C}, dt), whole_out);
      embedding_backward(idx, make(dout, {N, C}, dt), whole_dw);
      const Vec want_out = get(whole_out), want_dw = get(whole_dw);
      for (int64_t parts : {1, 2, 3}) {
        const int64_t Vl = padded_rows(V, parts);
        Vec sum(static_cast<size_t>(N * C), 0.0);
        for (const VocabPart& p : split_vocab(V, parts)) {
          const std::string what =
              "parts=" + std::to_string(parts) + " begin=" + std::to_string(p.begin);
          // Overwritten, also in the rows whose id another part holds.
          Tensor out = Tensor::full({N, C}, 7.0, dt);
          vocab_embedding_forward(idx, make(part_rows(w, C, p, Vl, kGarbage), {Vl, C}, dt), p.begin,
                                  p.count, V, out);
          const Vec o = get(out);
          for (size_t i = 0; i < o.size(); ++i) sum[i] += o[i];
          // dw starts as whole_dw did (ones) in its rows, kGarbage in its padding.
          Tensor dw = make(part_rows(Vec(V * C, 1.0), C, p, Vl, kGarbage), {Vl, C}, dt);
          Vec want = get(dw);  // the padding as stored, kGarbage rounded to the dtype
          std::copy_n(want_dw.begin() + p.begin * C, p.count * C, want.begin());
          vocab_embedding_backward(idx, make(dout, {N, C}, dt), p.begin, p.count, V, dw);
          expect_near(get(dw), want, 0, "vocab_embedding_backward " + what);
        }
        expect_near(sum, want_out, 0, "vocab_embedding_forward parts=" + std::to_string(parts));
      }
    }
  }
}

// Runs the vocabulary-parallel loss over `parts` parts, reducing as the group would (max of
// row_max, then the sum of sums in the dtype), and returns {lse, loss}. `dlogits` gets each
// part's backward from `lse_for_backward`, checked to be 0 in the padding columns.
struct VocabLoss {
  Vec lse;
  double loss;
};
VocabLoss vocab_loss(const Vec& logits, const std::vector<int64_t>& tgt, int64_t V, int64_t parts,
                     DType dt, double dloss, const Tensor& lse_for_backward, Vec& dlogits) {
  const int64_t N = static_cast<int64_t>(tgt.size()), Vl = padded_rows(V, parts);
  const Tensor t = Tensor::from_vector<int64_t>(tgt, {N});
  std::vector<Tensor> part_logits;
  Vec gmax(static_cast<size_t>(N), -INFINITY);
  for (const VocabPart& p : split_vocab(V, parts)) {
    part_logits.push_back(make(part_columns(logits, N, V, p, Vl, kGarbage), {N, Vl}, dt));
    Tensor row_max = Tensor::full({N}, 5.0, dt);
    vocab_ce_max(part_logits.back(), p.count, row_max);
    const Vec m = get(row_max);
    for (int64_t n = 0; n < N; ++n) gmax[n] = std::max(gmax[n], m[n]);
  }
  const Tensor row_max = make(gmax, {N}, dt);
  Tensor total = Tensor::zeros({2, N}, dt);
  for (size_t r = 0; r < part_logits.size(); ++r) {
    const VocabPart p = split_vocab(V, parts)[r];
    Tensor sums = Tensor::full({2, N}, 5.0, dt);
    vocab_ce_sums(part_logits[r], t, p.begin, p.count, V, row_max, sums);
    add(total, sums, total);  // the all-reduce, in the dtype
  }
  Tensor lse = Tensor::full({N}, 5.0, dt), loss = Tensor::scalar(5.0, dt);
  vocab_ce_finish(row_max, total, lse, loss);
  dlogits.assign(static_cast<size_t>(N * V), NAN);
  for (size_t r = 0; r < part_logits.size(); ++r) {
    const VocabPart p = split_vocab(V, parts)[r];
    Tensor d = Tensor::full({N, Vl}, 5.0, dt);
    vocab_ce_backward(part_logits[r], t.to(DType::i32), p.begin, p.count, lse_for_backward, dloss,
                      d);
    const Vec dv = get(d);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t v = 0; v < Vl; ++v) {
        if (v < p.count) dlogits[n * V + p.begin + v] = dv[n * Vl + v];
        else EXPECT_EQ(dv[n * Vl + v], 0.0) << "padding column " << v << " of part " << r;
      }
    }
  }
  return {get(lse), loss.item()};
}

TEST(VocabCrossEntropy, PartsMatchTheWholeLoss) {
  const int64_t V = kVocab;
  const std::vector<int64_t> tgt = {0, V - 1, 18, 19, 12, 13, 24, 25, 30, 5, 5};
  const int64_t N = static_cast<int64_t>(tgt.size());
  const Vec logits = randn(N * V, 43, 3.0);
  const double dloss = 0.8;
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-14 : 1e-6;
    const Tensor lt = make(logits, {N, V}, dt), t = Tensor::from_vector<int64_t>(tgt, {N});
    Tensor lse = Tensor::empty({N}, dt), loss = Tensor::scalar(0.0, dt),
           d = Tensor::empty({N, V}, dt);
    cross_entropy_forward(lt, t, lse, loss);
    cross_entropy_backward(lt, t, lse, dloss, d);
    for (int64_t parts : {1, 2, 3}) {
      const std::string what = std::string(dtype_name(dt)) + " parts=" + std::to_string(parts);
      Vec dl;
      const VocabLoss got = vocab_loss(logits, tgt, V, parts, dt, dloss, lse, dl);
      expect_near(got.lse, get(lse), tol, "lse " + what);
      EXPECT_NEAR(got.loss, loss.item(), tol * std::abs(loss.item())) << what;
      // From the same lse, the backward is cross_entropy_backward's, column for column.
      expect_near(dl, get(d), dt == DType::f64 ? 1e-15 : 1e-7, "dlogits " + what);
    }
  }
}

TEST(VocabParallel, ResultsIndependentOfThreads) {
  const int saved = omp_get_max_threads();
  const int64_t V = 3001, N = 67, C = 130;
  const Vec logits = randn(N * V, 44, 3.0), dout = randn(N * C, 45);
  std::vector<int64_t> tgt(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) tgt[n] = (n * 977) % V;
  const VocabPart p = {1000, 1000};
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    Vec dl;
    const Tensor lse = Tensor::zeros({N}, DType::f32);
    const VocabLoss l = vocab_loss(logits, tgt, V, 3, DType::f32, 1.0, lse, dl);
    Tensor dw = Tensor::zeros({p.count + 5, C});
    vocab_embedding_backward(Tensor::from_vector<int64_t>(tgt, {N}), make(dout, {N, C}, DType::f32),
                             p.begin, p.count, V, dw);
    return std::vector<Vec>{l.lse, {l.loss}, dl, get(dw)};
  };
  const auto one = run(1), three = run(3);
  omp_set_num_threads(saved);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], three[i]) << "output " << i;
}

TEST(VocabParallel, OutOfRangeIdsAndBadShapesThrow) {
  const int64_t V = kVocab;
  Tensor w = Tensor::zeros({21, 3}), out = Tensor::empty({2, 3});
  expect_error(
      [&] {
        vocab_embedding_forward(Tensor::from_vector<int32_t>({1, 37}, {2}), w, 19, 18, V, out);
      },
      {"[vocab_embedding_forward]", "37", "V=37"});
  expect_error(
      [&] {
        vocab_embedding_backward(Tensor::from_vector<int64_t>({-1, 0}, {2}), out, 0, 19, V, w);
      },
      {"[vocab_embedding_backward]", "-1", "V=37"});
  expect_error([&] { vocab_embedding_forward(Tensor::zeros({2}, DType::i64), w, 0, 22, V, out); },
               {"[vocab_embedding_forward]", "count 22", "Vl=21"});
  expect_error([&] { vocab_embedding_forward(Tensor::zeros({2}, DType::i64), w, 20, 18, V, out); },
               {"[vocab_embedding_forward]", "[20, 38)", "37"});
  expect_error([&] { vocab_embedding_backward(Tensor::zeros({2}, DType::i64), out, -1, 18, V, w); },
               {"[vocab_embedding_backward]", "[-1, 17)"});
  expect_error(
      [&] {
        vocab_embedding_forward(Tensor::zeros({2}, DType::i64), Tensor::zeros({21}), 0, 18, V, out);
      },
      {"[vocab_embedding_forward]", "[Vl,C]"});

  const Tensor logits = Tensor::zeros({2, 21}), row_max = Tensor::zeros({2});
  Tensor sums = Tensor::empty({2, 2}), lse = Tensor::empty({2}), loss = Tensor::scalar(0.0);
  expect_error(
      [&] {
        vocab_ce_sums(logits, Tensor::from_vector<int64_t>({0, 40}, {2}), 0, 19, V, row_max, sums);
      },
      {"[vocab_ce_sums]", "40", "V=37"});
  expect_error(
      [&] {
        vocab_ce_sums(logits, Tensor::from_vector<int32_t>({-3, 0}, {2}), 19, 18, V, row_max, sums);
      },
      {"[vocab_ce_sums]", "-3", "V=37"});
  expect_error(
      [&] { vocab_ce_sums(logits, Tensor::zeros({2}, DType::i64), 0, 19, V, row_max, lse); },
      {"[vocab_ce_sums]", "sums", "4 elements"});
  expect_error(
      [&] { vocab_ce_sums(logits, Tensor::zeros({2}, DType::i64), 30, 19, V, row_max, sums); },
      {"[vocab_ce_sums]", "[30, 49)", "37"});
  Tensor rm = Tensor::empty({2});
  expect_error([&] { vocab_ce_max(logits, 22, rm); }, {"[vocab_ce_max]", "count 22", "Vl=21"});
  Tensor rm3 = Tensor::empty({3});
  expect_error([&] { vocab_ce_max(logits, 19, rm3); }, {"[vocab_ce_max]", "row_max", "2 elements"});
  expect_error([&] { vocab_ce_finish(row_max, lse, lse, loss); },
               {"[vocab_ce_finish]", "sums", "4 elements"});
  expect_error([&] { vocab_ce_finish(row_max, sums, lse, sums); },
               {"[vocab_ce_finish]", "loss", "1 elements"});
  Tensor dl = Tensor::empty({2, 21});
  expect_error(
      [&] {
        vocab_ce_backward(logits, Tensor::from_vector<int64_t>({0, -2}, {2}), 0, 19, lse, 1.0, dl);
      },
      {"[vocab_ce_backward]", "-2"});
  expect_error(
      [&] { vocab_ce_backward(logits, Tensor::zeros({2}, DType::i64), 0, 22, lse, 1.0, dl); },
      {"[vocab_ce_backward]", "count 22"});
  expect_error([&] { vocab_ce_max(Tensor::zeros({2, 21}, DType::i32), 19, rm); },
               {"[vocab_ce_max]", "i32"});
}

TEST(VocabParallel, EmptyBatch) {
  const int64_t V = kVocab, C = 4, Vl = 21;
  const Tensor idx = Tensor::zeros({0}, DType::i64);
  Tensor out = Tensor::empty({0, C}), dw = Tensor::full({Vl, C}, 2.0);
  vocab_embedding_forward(idx, Tensor::zeros({Vl, C}), 19, 18, V, out);
  vocab_embedding_backward(idx, Tensor::empty({0, C}), 19, 18, V, dw);
  EXPECT_EQ(get(dw), Vec(Vl * C, 2.0));
  const Tensor logits = Tensor::empty({0, Vl});
  Tensor row_max = Tensor::empty({0}), sums = Tensor::empty({2, 0}), lse = Tensor::empty({0});
  Tensor loss = Tensor::scalar(5.0), dl = Tensor::empty({0, Vl});
  vocab_ce_max(logits, 18, row_max);
  vocab_ce_sums(logits, idx, 19, 18, V, row_max, sums);
  vocab_ce_finish(row_max, sums, lse, loss);
  EXPECT_EQ(loss.item(), 0.0);
  vocab_ce_backward(logits, idx, 19, 18, lse, 1.0, dl);
}

// ---------------------------------------------------------------- dropout

TEST(Dropout, KeepRateScaleAndReproducibleMask) {
  const int64_t n = 200000;
  const double p = 0.3;
  const Tensor x = Tensor::full({n}, 2.0);
  Tensor a = Tensor::empty({n}), b = Tensor::empty({n}), c = Tensor::empty({n});
  dropout(x, p, 42, 7, 0, a);
  dropout(x, p, 42, 7, 0, b);
  dropout(x, p, 42, 8, 0, c);
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>(), vc = c.to_vector<float>();
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = uniform_at(42, 7, static_cast<uint64_t>(i)) >= p;
    ASSERT_EQ(va[i], keep ? static_cast<float>(2.0 / (1 - p)) : 0.0f) << i;
    kept += keep;
  }
  EXPECT_NEAR(static_cast<double>(kept) / n, 1 - p, 0.01);
  dropout(x, 1.0, 42, 7, 0, a);
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(n, 0.0f));
  dropout(x, 0.0, 42, 7, 0, a);
  EXPECT_EQ(a.to_vector<float>(), x.to_vector<float>());
}

// A part of a tensor at global index `offset` draws exactly that part of the whole mask:
// micro-batches and data-parallel ranks see the masks of one big batch.
TEST(Dropout, OffsetSelectsTheSliceOfTheWholeMask) {
  const int64_t n = 4096;
  const Tensor x = Tensor::full({n}, 1.0);
  Tensor whole = Tensor::empty({n});
  dropout(x, 0.4, 9, 3, 0, whole);
  const auto w = whole.to_vector<float>();
  for (int64_t start : {int64_t{0}, int64_t{1000}, int64_t{3000}}) {
    const Tensor part_in = Tensor::full({n - start}, 1.0);
    Tensor part = Tensor::empty({n - start});
    dropout(part_in, 0.4, 9, 3, static_cast<uint64_t>(start), part);
    EXPECT_EQ(part.to_vector<float>(), std::vector<float>(w.begin() + start, w.end())) << start;
  }
}

}  // namespace
}  // namespace ternion::kernels::cpu

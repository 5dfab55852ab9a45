// Naive f64 references for the benchmarked kernels; see validate.h.
#include "validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "kernels/kernels.h"

namespace ternion::bench {
namespace {

namespace k = ternion::kernels::cpu;
using Vec = std::vector<double>;

// f32 kernel against f64 loop: |got - want| <= kTol * (1 + |want|).
constexpr double kTol = 2e-5;
constexpr uint64_t kSeed = 1234;

Tensor randn(const Shape& shape, std::string_view name, double mean = 0.0, double std = 1.0) {
  Tensor t = Tensor::empty(shape, DType::f32);
  init_normal(t, kSeed, name, mean, std);
  return t;
}

Vec values(const Tensor& t) { return t.to_vector<double>(); }

// Compares one output; tracks the largest error of a kernel for its report line.
struct Checker {
  const char* kernel;
  double max_err = 0.0;
  int outputs = 0;

  void expect(const char* output, const Tensor& got, const Vec& want) {
    const Vec g = values(got);
    if (g.size() != want.size()) {
      std::fprintf(stderr, "[validate %s] %s has %zu elements, reference %zu\n", kernel, output,
                   g.size(), want.size());
      std::abort();
    }
    for (size_t i = 0; i < g.size(); ++i) {
      const double err = std::abs(g[i] - want[i]), tol = kTol * (1.0 + std::abs(want[i]));
      if (!(err <= tol)) {
        std::fprintf(stderr, "[validate %s] %s[%zu] = %.9g, reference %.9g: |err| %.3g > %.3g\n",
                     kernel, output, i, g[i], want[i], err, tol);
        std::abort();
      }
      max_err = std::max(max_err, err);
    }
    ++outputs;
  }
  bool done() const {
    std::fprintf(stderr, "[validate %s] ok: %d outputs match the f64 reference, max |err| %.2g\n",
                 kernel, outputs, max_err);
    return true;
  }
};

bool check_gemm() {
  const int64_t N = 6, K = 5, M = 9;  // x [N,K], w [M,K], dy [N,M]
  Tensor x = randn({1, N, K}, "x"), w = randn({1, M, K}, "w"), dy = randn({1, N, M}, "dy");
  Tensor y = Tensor::empty({1, N, M}), dx = Tensor::empty({1, N, K}), dw = Tensor::empty({1, M, K});
  k::gemm(x, false, w, true, y, 1.0, 0.0);
  k::gemm(dy, false, w, false, dx, 1.0, 0.0);
  k::gemm(dy, true, x, false, dw, 1.0, 0.0);
  const Vec vx = values(x), vw = values(w), vdy = values(dy);
  Vec ry(N * M, 0.0), rdx(N * K, 0.0), rdw(M * K, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < K; ++c) {
        ry[n * M + m] += vx[n * K + c] * vw[m * K + c];
        rdx[n * K + c] += vdy[n * M + m] * vw[m * K + c];
        rdw[m * K + c] += vdy[n * M + m] * vx[n * K + c];
      }
  Checker ck{"gemm"};
  ck.expect("y = x w^T", y, ry);
  ck.expect("dx = dy w", dx, rdx);
  ck.expect("dw = dy^T x", dw, rdw);
  return ck.done();
}

bool check_layernorm() {
  const int64_t N = 4, C = 10;
  const double eps = 1e-5, acc0 = 0.25;  // dw, db start at acc0: the kernel adds to them
  Tensor x = randn({N, C}, "x", 0.5, 2.0), w = randn({C}, "w"), b = randn({C}, "b");
  Tensor dy = randn({N, C}, "dy");
  Tensor y = Tensor::empty({N, C}), mean = Tensor::empty({N}), rstd = Tensor::empty({N});
  Tensor dx = Tensor::empty({N, C}), dw = Tensor::full({C}, acc0), db = Tensor::full({C}, acc0);
  k::layernorm_forward(x, w, b, eps, y, mean, rstd);
  k::layernorm_backward(x, w, mean, rstd, dy, dx, dw, db);
  const Vec vx = values(x), vw = values(w), vb = values(b), vdy = values(dy);
  Vec ry(N * C), rm(N), rr(N), rdx(N * C), rdw(C, acc0), rdb(C, acc0);
  for (int64_t n = 0; n < N; ++n) {
    const double* xr = &vx[n * C];
    double s = 0.0, v = 0.0;
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    rm[n] = s / C;
    for (int64_t c = 0; c < C; ++c) v += (xr[c] - rm[n]) * (xr[c] - rm[n]);
    rr[n] = 1.0 / std::sqrt(v / C + eps);
    double mg = 0.0, mgx = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (xr[c] - rm[n]) * rr[n], g = vdy[n * C + c] * vw[c];
      ry[n * C + c] = xhat * vw[c] + vb[c];
      mg += g / C;
      mgx += g * xhat / C;
      rdw[c] += vdy[n * C + c] * xhat;
      rdb[c] += vdy[n * C + c];
    }
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (xr[c] - rm[n]) * rr[n], g = vdy[n * C + c] * vw[c];
      rdx[n * C + c] = rr[n] * (g - mg - xhat * mgx);
    }
  }
  Checker ck{"layernorm"};
  ck.expect("y", y, ry);
  ck.expect("mean", mean, rm);
  ck.expect("rstd", rstd, rr);
  ck.expect("dx", dx, rdx);
  ck.expect("dw", dw, rdw);
  ck.expect("db", db, rdb);
  return ck.done();
}

bool check_attention() {
  const int64_t B = 1, H = 2, T = 5, D = 4;
  const Shape s = {B, H, T, D};
  Tensor q = randn(s, "q"), kk = randn(s, "k"), v = randn(s, "v"), dout = randn(s, "dout");
  Tensor out = Tensor::empty(s), lse = Tensor::empty({B, H, T});
  Tensor dq = Tensor::empty(s), dk = Tensor::empty(s), dv = Tensor::empty(s);
  k::attention_forward(q, kk, v, out, lse);
  k::attention_backward(q, kk, v, out, lse, dout, dq, dk, dv);
  const Vec vq = values(q), vk = values(kk), vv = values(v), vdo = values(dout);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Vec rout(B * H * T * D, 0.0), rp(B * H * T * T, 0.0), rlse(B * H * T, 0.0);
  Vec rdq(rout.size(), 0.0), rdk(rout.size(), 0.0), rdv(rout.size(), 0.0);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const double *Q = &vq[bh * T * D], *K = &vk[bh * T * D], *V = &vv[bh * T * D];
    const double* dO = &vdo[bh * T * D];
    double* P = &rp[bh * T * T];
    for (int64_t i = 0; i < T; ++i) {  // P[i, j<=i] = softmax_j(q_i . k_j * scale)
      double mx = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < D; ++d) dot += Q[i * D + d] * K[j * D + d];
        P[i * T + j] = dot * scale;
        mx = std::max(mx, P[i * T + j]);
      }
      for (int64_t j = 0; j <= i; ++j) sum += P[i * T + j] = std::exp(P[i * T + j] - mx);
      for (int64_t j = 0; j <= i; ++j) P[i * T + j] /= sum;
      rlse[bh * T + i] = mx + std::log(sum);
    }
    for (int64_t i = 0; i < T; ++i) {
      Vec dP(T, 0.0);
      double rowdot = 0.0;
      for (int64_t j = 0; j < T; ++j) {
        for (int64_t d = 0; d < D; ++d) {
          rout[bh * T * D + i * D + d] += P[i * T + j] * V[j * D + d];
          rdv[bh * T * D + j * D + d] += P[i * T + j] * dO[i * D + d];
          dP[j] += dO[i * D + d] * V[j * D + d];
        }
        rowdot += dP[j] * P[i * T + j];
      }
      for (int64_t j = 0; j < T; ++j) {
        const double dS = P[i * T + j] * (dP[j] - rowdot) * scale;
        for (int64_t d = 0; d < D; ++d) {
          rdq[bh * T * D + i * D + d] += dS * K[j * D + d];
          rdk[bh * T * D + j * D + d] += dS * Q[i * D + d];
        }
      }
    }
  }
  Checker ck{"attention"};
  ck.expect("out", out, rout);
  ck.expect("lse", lse, rlse);
  ck.expect("dq", dq, rdq);
  ck.expect("dk", dk, rdk);
  ck.expect("dv", dv, rdv);
  return ck.done();
}

bool check_gelu() {
  const int64_t n = 37;  // not a multiple of any vector width
  Tensor x = randn({n}, "x", 0.0, 2.0), dy = randn({n}, "dy");
  Tensor y = Tensor::empty({n}), dx = Tensor::empty({n});
  k::gelu_forward(x, y);
  k::gelu_backward(x, dy, dx);
  const Vec vx = values(x), vdy = values(dy);
  const double s = std::sqrt(2.0 / std::numbers::pi), c = 0.044715;
  Vec ry(n), rdx(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = vx[i], t = std::tanh(s * (v + c * v * v * v));
    ry[i] = 0.5 * v * (1.0 + t);
    rdx[i] = vdy[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * s * (1.0 + 3.0 * c * v * v));
  }
  Checker ck{"gelu"};
  ck.expect("y", y, ry);
  ck.expect("dx", dx, rdx);
  return ck.done();
}

bool check_cross_entropy() {
  const int64_t N = 5, V = 11;
  const double dloss = 0.5;
  Tensor logits = randn({N, V}, "logits", 0.0, 2.0);
  std::vector<int32_t> tg(N);
  for (int64_t n = 0; n < N; ++n) tg[n] = static_cast<int32_t>((7 * n + 3) % V);
  Tensor targets = Tensor::from_vector<int32_t>(tg, {N});
  Tensor lse = Tensor::empty({N}), loss = Tensor::empty({1}), dlogits = Tensor::empty({N, V});
  k::cross_entropy_forward(logits, targets, lse, loss);
  k::cross_entropy_backward(logits, targets, lse, dloss, dlogits);
  const Vec vl = values(logits);
  Vec rlse(N), rloss(1, 0.0), rd(N * V);
  for (int64_t n = 0; n < N; ++n) {
    double sum = 0.0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(vl[n * V + j]);
    rlse[n] = std::log(sum);
    rloss[0] += (rlse[n] - vl[n * V + tg[n]]) / N;
    for (int64_t j = 0; j < V; ++j)
      rd[n * V + j] = dloss / N * (std::exp(vl[n * V + j] - rlse[n]) - (j == tg[n] ? 1.0 : 0.0));
  }
  Checker ck{"cross_entropy"};
  ck.expect("lse", lse, rlse);
  ck.expect("loss", loss, rloss);
  ck.expect("dlogits", dlogits, rd);
  return ck.done();
}

}  // namespace

void validate_gemm() { [[maybe_unused]] static const bool ok = check_gemm(); }
void validate_layernorm() { [[maybe_unused]] static const bool ok = check_layernorm(); }
void validate_attention() { [[maybe_unused]] static const bool ok = check_attention(); }
void validate_gelu() { [[maybe_unused]] static const bool ok = check_gelu(); }
void validate_cross_entropy() { [[maybe_unused]] static const bool ok = check_cross_entropy(); }

}  // namespace ternion::bench

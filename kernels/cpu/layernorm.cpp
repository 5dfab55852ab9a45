// Layer normalisation over the last dim.
//   forward:  mean[n] = sum_c x / C, var[n] = sum_c (x - mean)^2 / C (biased),
//             rstd[n] = 1 / sqrt(var + eps), y[N,C] = (x - mean) * rstd * w[C] + b[C]
//             (y, mean, rstd overwritten; mean/rstd have the dtype of x)
//   backward: xhat = (x - mean) * rstd, g = dy * w,
//             dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))      (overwrite)
//             dw[C] += sum_n dy * xhat, db[C] += sum_n dy                (accumulate)
// Precision: row statistics and all reductions accumulate in f64 (two-pass variance).
// Parallelism: rows for the forward and dx; column blocks (rows added in ascending n)
// for dw/db, so no result depends on the number of threads.
#include <cmath>

#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

constexpr int64_t kColBlock = 64;

template <typename T>
void forward_impl(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) {
  constexpr const char* op = "layernorm_forward";
  const T* px = detail::ptr<T>(op, "x", x);
  const T* pw = detail::ptr<T>(op, "w", w);
  const T* pb = detail::ptr<T>(op, "b", b);
  T* py = detail::ptr<T>(op, "y", y);
  T* pm = detail::ptr<T>(op, "mean", mean);
  T* pr = detail::ptr<T>(op, "rstd", rstd);
  const int64_t N = mean.numel(), C = w.numel();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = px + n * C;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += static_cast<double>(xr[c]);
    const double m = C ? s / static_cast<double>(C) : 0.0;
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; ++c) {
      const double d = static_cast<double>(xr[c]) - m;
      v += d * d;
    }
    const double r = 1.0 / std::sqrt((C ? v / static_cast<double>(C) : 0.0) + eps);
    pm[n] = static_cast<T>(m);
    pr[n] = static_cast<T>(r);
    const T mt = static_cast<T>(m), rt = static_cast<T>(r);
    T* yr = py + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt) * rt * pw[c] + pb[c];
  }
}

template <typename T>
void backward_impl(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db) {
  constexpr const char* op = "layernorm_backward";
  const T* px = detail::ptr<T>(op, "x", x);
  const T* pw = detail::ptr<T>(op, "w", w);
  const T* pm = detail::ptr<T>(op, "mean", mean);
  const T* pr = detail::ptr<T>(op, "rstd", rstd);
  const T* pdy = detail::ptr<T>(op, "dy", dy);
  T* pdx = detail::ptr<T>(op, "dx", dx);
  T* pdw = detail::ptr<T>(op, "dw", dw);
  T* pdb = detail::ptr<T>(op, "db", db);
  const int64_t N = mean.numel(), C = w.numel();
  if (C == 0) return;
  const double inv_c = 1.0 / static_cast<double>(C);

#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = px + n * C;
    const T* dyr = pdy + n * C;
    const double m = static_cast<double>(pm[n]), r = static_cast<double>(pr[n]);
    double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dyr[c]) * static_cast<double>(pw[c]);
      sg += g;
      sgx += g * (static_cast<double>(xr[c]) - m) * r;
    }
    const double a = sg * inv_c, bx = sgx * inv_c;
    T* dxr = pdx + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dyr[c]) * static_cast<double>(pw[c]);
      const double xhat = (static_cast<double>(xr[c]) - m) * r;
      dxr[c] = static_cast<T>(r * (g - a - xhat * bx));
    }
  }

  const int64_t nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kColBlock, len = std::min(kColBlock, C - c0);
    double aw[kColBlock] = {}, ab[kColBlock] = {};
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = px + n * C + c0;
      const T* dyr = pdy + n * C + c0;
      const double m = static_cast<double>(pm[n]), r = static_cast<double>(pr[n]);
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const double d = static_cast<double>(dyr[j]);
        aw[j] += d * (static_cast<double>(xr[j]) - m) * r;
        ab[j] += d;
      }
    }
    for (int64_t j = 0; j < len; ++j) {
      pdw[c0 + j] = static_cast<T>(pdw[c0 + j] + aw[j]);
      pdb[c0 + j] = static_cast<T>(pdb[c0 + j] + ab[j]);
    }
  }
}

void check_shapes(const char* op, const Tensor& x, const Tensor& w, const Tensor& mean,
                  const Tensor& rstd) {
  const int64_t C = w.numel(), N = mean.numel();
  TN_CHECK(x.numel() == N * C && rstd.numel() == N, op, "shape mismatch: x ", x.str(), ", w ",
           w.str(), ", mean ", mean.str(), ", rstd ", rstd.str());
}

}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                       Tensor& mean, Tensor& rstd) {
  check_shapes("layernorm_forward", x, w, mean, rstd);
  detail::check_numel("layernorm_forward", "b", b, w.numel());
  detail::check_numel("layernorm_forward", "y", y, x.numel());
  detail::dispatch_float("layernorm_forward", x, [&](auto tag) {
    forward_impl<decltype(tag)>(x, w, b, eps, y, mean, rstd);
  });
}

void layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                        const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db) {
  check_shapes("layernorm_backward", x, w, mean, rstd);
  detail::check_numel("layernorm_backward", "dy", dy, x.numel());
  detail::check_numel("layernorm_backward", "dx", dx, x.numel());
  detail::check_numel("layernorm_backward", "dw", dw, w.numel());
  detail::check_numel("layernorm_backward", "db", db, w.numel());
  detail::dispatch_float("layernorm_backward", x, [&](auto tag) {
    backward_impl<decltype(tag)>(x, w, mean, rstd, dy, dx, dw, db);
  });
}

}  // namespace ternion::kernels::cpu

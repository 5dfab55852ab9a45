// Inverted dropout, elementwise on any shape:
//   out[i] = keep[i] ? x[i] / (1 - p) : 0,  keep[i] = uniform_at(key, stream, offset + i) >= p
//   (overwrite; out may alias x). The mask is a pure function of (key, stream, global index),
//   so the backward is this kernel applied to dy with the same arguments, on any thread
//   count, and a micro-batch at global index `offset` draws its slice of the batch's mask.
// p == 0 keeps everything; p == 1 drops everything (out = 0, no division by zero).
#include "core/rng.h"
#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

template <typename T>
void dropout_impl(const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset, Tensor& out) {
  const T* px = detail::ptr<T>("dropout", "x", x);
  T* po = detail::ptr<T>("dropout", "out", out);
  const int64_t n = x.numel();
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    // Compared in f64, as the contract reads (a float p could differ by one ulp).
    const bool keep = static_cast<double>(uniform_at(key, stream, offset + static_cast<uint64_t>(i))) >= p;
    po[i] = keep ? px[i] * scale : T(0);
  }
}

}  // namespace

void dropout(const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset, Tensor& out) {
  TN_CHECK(p >= 0.0 && p <= 1.0, "dropout", "p must be in [0, 1], got ", p);
  detail::check_numel("dropout", "out", out, x.numel());
  detail::dispatch_float("dropout", x, [&](auto tag) {
    dropout_impl<decltype(tag)>(x, p, key, stream, offset, out);
  });
}

}  // namespace ternion::kernels::cpu

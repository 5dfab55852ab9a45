// Embedding lookup.
//   forward:  out[N,C] = w[idx[n], C]                        (overwrite)
//   backward: dw[V,C] += dout[n, C] at row idx[n]            (accumulate, in the dtype of dw)
// idx: N ids, i32 or i64, checked 0 <= id < V before any write (the error names the id and V).
// The backward parallelises over column blocks, each adding rows in ascending n, so
// repeated ids need no atomics and the result does not depend on the thread count.
#include <cstring>

#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

constexpr int64_t kColBlock = 64;

template <typename T>
void forward_impl(const std::vector<int64_t>& ids, const Tensor& w, Tensor& out) {
  const T* pw = detail::ptr<T>("embedding_forward", "w", w);
  T* po = detail::ptr<T>("embedding_forward", "out", out);
  const int64_t n = static_cast<int64_t>(ids.size()), C = w.size(1);
  if (C == 0) return;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(po + i * C, pw + ids[static_cast<size_t>(i)] * C, static_cast<size_t>(C) * sizeof(T));
  }
}

template <typename T>
void backward_impl(const std::vector<int64_t>& ids, const Tensor& dout, Tensor& dw) {
  const T* pd = detail::ptr<T>("embedding_backward", "dout", dout);
  T* pw = detail::ptr<T>("embedding_backward", "dw", dw);
  const int64_t n = static_cast<int64_t>(ids.size()), C = dw.size(1);
  const int64_t nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kColBlock, len = std::min(kColBlock, C - j0);
    for (int64_t i = 0; i < n; ++i) {
      const T* src = pd + i * C + j0;
      T* dst = pw + ids[static_cast<size_t>(i)] * C + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace

void embedding_forward(const Tensor& idx, const Tensor& w, Tensor& out) {
  TN_CHECK(w.ndim() == 2, "embedding_forward", "w must be [V,C], got ", w.str());
  detail::check_numel("embedding_forward", "out", out, idx.numel() * w.size(1));
  const std::vector<int64_t> ids = detail::load_indices("embedding_forward", idx, w.size(0));
  detail::dispatch_float("embedding_forward", w, [&](auto tag) {
    forward_impl<decltype(tag)>(ids, w, out);
  });
}

void embedding_backward(const Tensor& idx, const Tensor& dout, Tensor& dw) {
  TN_CHECK(dw.ndim() == 2, "embedding_backward", "dw must be [V,C], got ", dw.str());
  detail::check_numel("embedding_backward", "dout", dout, idx.numel() * dw.size(1));
  const std::vector<int64_t> ids = detail::load_indices("embedding_backward", idx, dw.size(0));
  detail::dispatch_float("embedding_backward", dw, [&](auto tag) {
    backward_impl<decltype(tag)>(ids, dout, dw);
  });
}

}  // namespace ternion::kernels::cpu

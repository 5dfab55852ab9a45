// Vocabulary-parallel embedding lookup. This rank's table w[Vl,C] holds the rows
// [begin, begin+count) of the whole [vocab,C] table in its first `count` rows; rows
// count..Vl-1 are padding, never read or written.
//   forward:  out[N,C] = w[idx[n]-begin, C] if begin <= idx[n] < begin+count, else 0  (overwrite)
//   backward: dw[Vl,C] += dout[n, C] at row idx[n]-begin for ids in the range  (accumulate,
//             in the dtype of dw); ids of other ranks add nothing
// idx: N ids, i32 or i64, checked 0 <= id < vocab before any write (the error names the id
// and vocab). Summed over the ranks of a group, the forward is embedding_forward on the
// whole table. The backward parallelises over column blocks, each adding rows in ascending
// n as embedding_backward does, so its rows match the whole table's bit for bit and do not
// depend on the thread count.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

namespace {

constexpr int64_t kColBlock = 64;

// Checks the range against the table and returns each id's local row, -1 outside the range.
std::vector<int64_t> local_rows(const char* op, const Tensor& idx, const Tensor& table,
                                int64_t begin, int64_t count, int64_t vocab) {
  check_vocab_table(op, table, begin, count, vocab);
  std::vector<int64_t> rows = detail::load_indices(op, idx, vocab);
  for (int64_t& r : rows) r = r >= begin && r < begin + count ? r - begin : -1;
  return rows;
}

template <typename T>
void forward_impl(const std::vector<int64_t>& rows, const Tensor& w, Tensor& out) {
  const T* pw = detail::ptr<T>("vocab_embedding_forward", "w", w);
  T* po = detail::ptr<T>("vocab_embedding_forward", "out", out);
  const int64_t n = static_cast<int64_t>(rows.size()), C = w.size(1);
  if (C == 0) return;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[static_cast<size_t>(i)];
    if (r < 0) std::fill_n(po + i * C, C, T(0));
    else std::memcpy(po + i * C, pw + r * C, static_cast<size_t>(C) * sizeof(T));
  }
}

template <typename T>
void backward_impl(const std::vector<int64_t>& rows, const Tensor& dout, Tensor& dw) {
  const T* pd = detail::ptr<T>("vocab_embedding_backward", "dout", dout);
  T* pw = detail::ptr<T>("vocab_embedding_backward", "dw", dw);
  const int64_t n = static_cast<int64_t>(rows.size()), C = dw.size(1);
  const int64_t nblocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t j0 = blk * kColBlock, len = std::min(kColBlock, C - j0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = rows[static_cast<size_t>(i)];
      if (r < 0) continue;
      const T* src = pd + i * C + j0;
      T* dst = pw + r * C + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace

void vocab_embedding_forward(const Tensor& idx, const Tensor& w, int64_t begin, int64_t count,
                             int64_t vocab, Tensor& out) {
  constexpr const char* op = "vocab_embedding_forward";
  const std::vector<int64_t> rows = local_rows(op, idx, w, begin, count, vocab);
  detail::check_numel(op, "out", out, idx.numel() * w.size(1));
  detail::dispatch_float(op, w, [&](auto tag) { forward_impl<decltype(tag)>(rows, w, out); });
}

void vocab_embedding_backward(const Tensor& idx, const Tensor& dout, int64_t begin,
                              int64_t count, int64_t vocab, Tensor& dw) {
  constexpr const char* op = "vocab_embedding_backward";
  const std::vector<int64_t> rows = local_rows(op, idx, dw, begin, count, vocab);
  detail::check_numel(op, "dout", dout, idx.numel() * dw.size(1));
  detail::dispatch_float(op, dw, [&](auto tag) { backward_impl<decltype(tag)>(rows, dout, dw); });
}

}  // namespace ternion::kernels::cpu

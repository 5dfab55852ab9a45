// Vocabulary-parallel embedding lookup (kernels/cpu/vocab_embedding.cpp). This rank's table
// w[Vl,C] holds the rows [begin, begin+count) of the whole [vocab,C] table in its first
// `count` rows; rows count..Vl-1 are padding, never read or written.
//   forward:  out[N,C] = w[idx[n]-begin, C] if begin <= idx[n] < begin+count, else 0  (overwrite)
//   backward: dw[Vl,C] += dout[n, C] at row idx[n]-begin for ids in the range  (accumulate,
//             atomicAdd); ids of other ranks add nothing
// idx: N ids, i32 or i64, checked 0 <= id < vocab on the device before any write (one small
// device-to-host copy; the error names the id and vocab).
// dtypes: f32, bf16 and f16 (w, out, dout, dw share one). Repeated ids add through atomics, so
// the order of the additions, and with it the last bits of dw, can vary between runs.
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

template <typename T>
__global__ void vocab_embedding_forward_kernel(const void* idx, bool is64, const T* w, T* out,
                                               int64_t begin, int64_t count, int64_t n,
                                               int64_t C) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = detail::load_index(idx, is64, i / C) - begin;
    out[i] = row >= 0 && row < count ? w[row * C + i % C] : detail::from_f<T>(0.f);
  }
}

template <typename T>
__global__ void vocab_embedding_backward_kernel(const void* idx, bool is64, const T* dout,
                                                T* dw, int64_t begin, int64_t count, int64_t n,
                                                int64_t C) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = detail::load_index(idx, is64, i / C) - begin;
    if (row >= 0 && row < count) atomicAdd(dw + row * C + i % C, dout[i]);
  }
}

// The same checks, in the same order and words, as the CPU version.
void check_shapes(const char* op, const Tensor& idx, const Tensor& table, const Tensor& rows,
                  const char* rows_name, int64_t begin, int64_t count, int64_t vocab) {
  check_vocab_table(op, table, begin, count, vocab);
  detail::check_indices(op, idx, vocab);
  detail::check_numel(op, rows_name, rows, idx.numel() * table.size(1));
}

}  // namespace

void vocab_embedding_forward(const Tensor& idx, const Tensor& w, int64_t begin, int64_t count,
                             int64_t vocab, Tensor& out) {
  constexpr const char* op = "vocab_embedding_forward";
  check_shapes(op, idx, w, out, "out", begin, count, vocab);
  const int64_t n = idx.numel(), C = w.size(1);
  if (n * C == 0) return;
  detail::dispatch_compute(op, w, [&](auto tag) {
    using T = decltype(tag);
    vocab_embedding_forward_kernel<T><<<detail::grid_for(n * C), detail::kThreads, 0,
                                        detail::stream_of(w)>>>(
        idx.raw_data(), idx.dtype() == DType::i64, detail::ptr<T>(op, "w", w),
        detail::ptr<T>(op, "out", out), begin, count, n, C);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void vocab_embedding_backward(const Tensor& idx, const Tensor& dout, int64_t begin,
                              int64_t count, int64_t vocab, Tensor& dw) {
  constexpr const char* op = "vocab_embedding_backward";
  check_shapes(op, idx, dw, dout, "dout", begin, count, vocab);
  const int64_t n = idx.numel(), C = dw.size(1);
  if (n * C == 0) return;
  detail::dispatch_compute(op, dw, [&](auto tag) {
    using T = decltype(tag);
    vocab_embedding_backward_kernel<T><<<detail::grid_for(n * C), detail::kThreads, 0,
                                         detail::stream_of(dw)>>>(
        idx.raw_data(), idx.dtype() == DType::i64, detail::ptr<T>(op, "dout", dout),
        detail::ptr<T>(op, "dw", dw), begin, count, n, C);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

// Embedding lookup (kernels/cpu/embedding.cpp):
//   forward:  out[N,C] = w[idx[n], C]                        (overwrite)
//   backward: dw[V,C] += dout[n, C] at row idx[n]            (accumulate, atomicAdd)
// idx: N ids, i32 or i64, checked 0 <= id < V on the device before any write (one small
// device-to-host copy; the error names the id and V).
// dtypes: f32, bf16 and f16 (w, out, dout, dw share one). Repeated ids add through atomics, so
// the order of the additions, and with it the last bits of dw, can vary between runs.
#include "kernels/cuda/common.cuh"

namespace ternion::kernels::cuda {

namespace {

template <typename T>
__global__ void embedding_forward_kernel(const void* idx, bool is64, const T* w, T* out,
                                         int64_t n, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = detail::load_index(idx, is64, i / C);
    out[i] = w[row * C + i % C];
  }
}

template <typename T>
__global__ void embedding_backward_kernel(const void* idx, bool is64, const T* dout, T* dw,
                                          int64_t n, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * C;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = detail::load_index(idx, is64, i / C);
    atomicAdd(dw + row * C + i % C, dout[i]);
  }
}

void check_shapes(const char* op, const Tensor& idx, const Tensor& table, const Tensor& rows) {
  TN_CHECK(table.ndim() == 2, op, "table must be [V,C], got ", table.str());
  detail::check_numel(op, "rows", rows, idx.numel() * table.size(1));
}

}  // namespace

void embedding_forward(const Tensor& idx, const Tensor& w, Tensor& out) {
  constexpr const char* op = "embedding_forward";
  check_shapes(op, idx, w, out);
  detail::check_indices(op, idx, w.size(0));
  const int64_t n = idx.numel(), C = w.size(1);
  if (n * C == 0) return;
  detail::dispatch_compute(op, w, [&](auto tag) {
    using T = decltype(tag);
    embedding_forward_kernel<T><<<detail::grid_for(n * C), detail::kThreads, 0,
                                  detail::stream_of(w)>>>(
        idx.raw_data(), idx.dtype() == DType::i64, detail::ptr<T>(op, "w", w),
        detail::ptr<T>(op, "out", out), n, C);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

void embedding_backward(const Tensor& idx, const Tensor& dout, Tensor& dw) {
  constexpr const char* op = "embedding_backward";
  check_shapes(op, idx, dw, dout);
  detail::check_indices(op, idx, dw.size(0));
  const int64_t n = idx.numel(), C = dw.size(1);
  if (n * C == 0) return;
  detail::dispatch_compute(op, dw, [&](auto tag) {
    using T = decltype(tag);
    embedding_backward_kernel<T><<<detail::grid_for(n * C), detail::kThreads, 0,
                                   detail::stream_of(dw)>>>(
        idx.raw_data(), idx.dtype() == DType::i64, detail::ptr<T>(op, "dout", dout),
        detail::ptr<T>(op, "dw", dw), n, C);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace ternion::kernels::cuda

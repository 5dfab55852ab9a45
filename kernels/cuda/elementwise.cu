// Elementwise kernels and the reductions that undo their broadcast, as kernels/cpu/
// elementwise.cpp: tensors are flat, a [N,C] against b [M,C] with N % M == 0 pairs element
// i of a with element i % (M*C) of b.
//   add:      out[N,C] = a[N,C] + b[M,C]                        (overwrite; out may alias a)
//   mul:      out[N,C] = a[N,C] * b[M,C]                        (overwrite; out may alias a)
//   axpby:    out = alpha a + beta b; beta == 0 ignores b       (overwrite; may alias a or b)
//   sum_rows: out[M,C] += sum_r a[r*M + m, C]                   (accumulate; f32 sums)
//   sum_all:  out = sum a                                       (overwrite; f64, reduce.cuh)
// dtypes: f32, bf16 and f16 (16-bit data computes in f32 and rounds once on the store).
// Determinism: one thread owns each output of sum_rows and adds rows in ascending order.
#include "kernels/cuda/reduce.cuh"

namespace ternion::kernels::cuda {

namespace {

using detail::from_f;
using detail::to_f;

template <typename T, bool kAdd>
__global__ void binary_kernel(const T* a, const T* b, T* out, int64_t n, int64_t m) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float x = to_f(a[i]), y = to_f(b[m == n ? i : i % m]);
    out[i] = from_f<T>(kAdd ? x + y : x * y);
  }
}

template <typename T>
__global__ void axpby_kernel(float alpha, const T* a, float beta, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float x = alpha * to_f(a[i]);
    out[i] = from_f<T>(b ? x + beta * to_f(b[i]) : x);
  }
}

template <typename T>
__global__ void sum_rows_kernel(const T* a, T* out, int64_t rows, int64_t m) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < m;
       j += int64_t{gridDim.x} * blockDim.x) {
    float s = 0.f;
    for (int64_t r = 0; r < rows; ++r) s += to_f(a[r * m + j]);
    out[j] = from_f<T>(to_f(out[j]) + s);
  }
}

template <bool kAdd>
void binary(const char* op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.numel(), m = b.numel();
  TN_CHECK((m > 0 && n % m == 0) || n == 0, op, "cannot broadcast b ", b.str(), " over a ",
           a.str());
  detail::check_numel(op, "out", out, n);
  if (n == 0) return;
  detail::dispatch_compute(op, a, [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T, kAdd><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(a)>>>(
        detail::ptr<T>(op, "a", a), detail::ptr<T>(op, "b", b), detail::ptr<T>(op, "out", out), n,
        m);
    TN_CUDA_CHECK_LAUNCH(op);
  });
}

}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& out) { binary<true>("add", a, b, out); }
void mul(const Tensor& a, const Tensor& b, Tensor& out) { binary<false>("mul", a, b, out); }

void axpby(double alpha, const Tensor& a, double beta, const Tensor& b, Tensor& out) {
  const int64_t n = a.numel();
  detail::check_numel("axpby", "out", out, n);
  if (beta != 0.0) detail::check_numel("axpby", "b", b, n);
  if (n == 0) return;
  detail::dispatch_compute("axpby", a, [&](auto tag) {
    using T = decltype(tag);
    const T* pb = beta != 0.0 ? detail::ptr<T>("axpby", "b", b) : nullptr;
    axpby_kernel<T><<<detail::grid_for(n), detail::kThreads, 0, detail::stream_of(a)>>>(
        static_cast<float>(alpha), detail::ptr<T>("axpby", "a", a), static_cast<float>(beta), pb,
        detail::ptr<T>("axpby", "out", out), n);
    TN_CUDA_CHECK_LAUNCH("axpby");
  });
}

void sum_rows(const Tensor& a, Tensor& out) {
  const int64_t n = a.numel(), m = out.numel();
  TN_CHECK((m > 0 && n % m == 0) || n == 0, "sum_rows", "cannot reduce a ", a.str(),
           " into out ", out.str());
  if (n == 0) return;
  detail::dispatch_compute("sum_rows", a, [&](auto tag) {
    using T = decltype(tag);
    sum_rows_kernel<T><<<detail::grid_for(m), detail::kThreads, 0, detail::stream_of(a)>>>(
        detail::ptr<T>("sum_rows", "a", a), detail::ptr<T>("sum_rows", "out", out), n / m, m);
    TN_CUDA_CHECK_LAUNCH("sum_rows");
  });
}

void sum_all(const Tensor& a, Tensor& out) {
  detail::check_numel("sum_all", "out", out, 1);
  detail::dispatch_compute("sum_all", a, [&](auto tag) {
    using T = decltype(tag);
    detail::reduce_to_scalar<T, false>("sum_all", detail::ptr<T>("sum_all", "a", a), a.numel(),
                                       out);
  });
}

}  // namespace ternion::kernels::cuda

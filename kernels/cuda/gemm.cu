// gemm: c[b] = alpha * op(a[b]) @ op(b[b]) + beta * c[b]      (overwrites c when beta == 0)
//   a [Ba, M, K] (or [Ba, K, M] when trans_a), b [Bb, K, N] (or [Bb, N, K] when trans_b),
//   c [batch, M, N]; Ba and Bb are 1 (shared by every batch) or batch. Row-major, contiguous.
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so the libraries get
// b as their first operand and a as their second, with m = N and n = M.
// f32: cublasSgemmStridedBatched with CUBLAS_DEFAULT_MATH (no TF32), f32 accumulation, so
//   results match the CPU path to f32 rounding.
// bf16, f16: cublasLtMatmul, 16-bit inputs and output (CUDA_R_16BF, CUDA_R_16F), f32
//   accumulation (CUBLAS_COMPUTE_32F) and f32 alpha/beta; f16 outputs beyond its range are inf.
// K == 0 scales c by beta (beta == 0 writes zeros, never reads c).
#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <mutex>

#include "kernels/cuda/common.cuh"

#define TN_CUBLAS_CHECK(call)                                                               \
  do {                                                                                      \
    cublasStatus_t st_ = (call);                                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::ternion::fail("cublas", ::ternion::str_cat(#call, " failed: ", cublasGetStatusString(st_), \
                                                   " at ", __FILE__, ":", __LINE__));       \
  } while (0)

namespace ternion::kernels::cuda {

namespace {

constexpr size_t kLtWorkspace = size_t{32} << 20;

struct Handles {
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
};

// One pair of handles per device, created on first use and kept for the process.
Handles& handles(int device) {
  static std::mutex mu;
  static std::array<Handles, 64> all{};
  TN_CHECK(device >= 0 && device < 64, "gemm", "device index ", device, " out of range");
  std::lock_guard<std::mutex> lock(mu);
  Handles& h = all[device];
  if (!h.blas) {
    TN_CUBLAS_CHECK(cublasCreate(&h.blas));
    TN_CUBLAS_CHECK(cublasSetMathMode(h.blas, CUBLAS_DEFAULT_MATH));
    TN_CUBLAS_CHECK(cublasLtCreate(&h.lt));
  }
  return h;
}

// Destroys a cuBLASLt descriptor at scope exit.
template <typename H, cublasStatus_t (*kDestroy)(H)>
struct LtGuard {
  H h = nullptr;
  ~LtGuard() {
    if (h) kDestroy(h);
  }
};

struct Problem {
  bool ta, tb;
  int64_t batch, M, N, K;
  int64_t a_rows, a_cols, b_rows, b_cols;  // stored row-major shapes of one a[b], b[b]
  int64_t stride_a, stride_b;              // 0 when shared
};

// The cuBLASLt element type of a 16-bit operand type.
template <typename T>
constexpr cudaDataType_t lt_type() {
  if constexpr (std::is_same_v<T, detail::bf16_t>) return CUDA_R_16BF;
  else return CUDA_R_16F;
}

void lt_gemm(const Problem& p, cudaDataType_t type, const void* a, const void* b, void* c,
             float alpha, float beta, int device, cudaStream_t stream, const Tensor& like) {
  cublasLtHandle_t lt = handles(device).lt;
  LtGuard<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy> op;
  TN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op.h, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opb = p.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = p.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  TN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_TRANSA, &opb, sizeof opb));
  TN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op.h, CUBLASLT_MATMUL_DESC_TRANSB, &opa, sizeof opa));
  // Column-major views: the library's A is our b ([b_cols rows, b_rows cols], ld b_cols),
  // its B our a, its C our c ([N, M], ld N).
  LtGuard<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy> la, lb, lc;
  TN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la.h, type, p.b_cols, p.b_rows, p.b_cols));
  TN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb.h, type, p.a_cols, p.a_rows, p.a_cols));
  TN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc.h, type, p.N, p.M, p.N));
  const int32_t count = static_cast<int32_t>(p.batch);
  const int64_t sc = p.M * p.N;
  const std::array<std::pair<cublasLtMatrixLayout_t, int64_t>, 3> layouts = {
      {{la.h, p.stride_b}, {lb.h, p.stride_a}, {lc.h, sc}}};
  for (auto& [layout, stride] : layouts) {
    TN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                     &count, sizeof count));
    TN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
  }
  LtGuard<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy> pref;
  TN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.h));
  TN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &kLtWorkspace, sizeof kLtWorkspace));
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  TN_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op.h, la.h, lb.h, lc.h, lc.h, pref.h, 1,
                                                 &heuristic, &found));
  TN_CHECK(found > 0, "gemm", "cuBLASLt has no ", type == CUDA_R_16BF ? "bf16" : "f16",
           " algorithm for M=", p.M, " N=", p.N, " K=", p.K, " batch=", p.batch);
  Tensor workspace = detail::scratch({static_cast<int64_t>(kLtWorkspace)}, DType::u16, like);
  TN_CUBLAS_CHECK(cublasLtMatmul(lt, op.h, &alpha, b, la.h, a, lb.h, &beta, c, lc.h, c, lc.h,
                                 &heuristic.algo, workspace.raw_data(), kLtWorkspace, stream));
}

}  // namespace

void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha,
          double beta) {
  const auto [batch, M, N, Ka] = check_gemm(a, trans_a, b, trans_b, c);
  for (int64_t s : {a.size(1), a.size(2), b.size(1), b.size(2), M, N, batch})
    TN_CHECK(s <= 2147483647, "gemm", "size ", s, " exceeds the cuBLAS int range");
  if (batch == 0 || M == 0 || N == 0) return;
  const cudaStream_t stream = detail::stream_of(c);
  if (Ka == 0) {  // empty sum: c = beta * c
    if (beta == 0.0) TN_CUDA_CHECK(cudaMemsetAsync(c.raw_data(), 0, c.nbytes(), stream));
    else axpby(beta, c, 0.0, Tensor(), c);
    return;
  }
  const Problem p{trans_a,   trans_b,   batch,     M,
                  N,         Ka,        a.size(1), a.size(2),
                  b.size(1), b.size(2), a.size(0) == 1 ? 0 : a.size(1) * a.size(2),
                  b.size(0) == 1 ? 0 : b.size(1) * b.size(2)};
  const int device = c.device().index;
  detail::dispatch_compute("gemm", c, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = detail::ptr<T>("gemm", "a", a);
    const T* pb = detail::ptr<T>("gemm", "b", b);
    T* pc = detail::ptr<T>("gemm", "c", c);
    const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
    if constexpr (std::is_same_v<T, float>) {
      cublasHandle_t h = handles(device).blas;
      TN_CUBLAS_CHECK(cublasSetStream(h, stream));
      TN_CUBLAS_CHECK(cublasSgemmStridedBatched(
          h, p.tb ? CUBLAS_OP_T : CUBLAS_OP_N, p.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
          static_cast<int>(N), static_cast<int>(M), static_cast<int>(Ka), &al, pb,
          static_cast<int>(p.b_cols), p.stride_b, pa, static_cast<int>(p.a_cols), p.stride_a, &be,
          pc, static_cast<int>(N), M * N, static_cast<int>(batch)));
    } else if (batch > 1 && (p.stride_a == 0 || p.stride_b == 0)) {
      // A shared operand: one call per batch rather than rely on a zero batch stride.
      Problem one = p;
      one.batch = 1;
      for (int64_t i = 0; i < batch; ++i)
        lt_gemm(one, lt_type<T>(), pa + i * p.stride_a, pb + i * p.stride_b, pc + i * M * N, al,
                be, device, stream, c);
    } else {
      lt_gemm(p, lt_type<T>(), pa, pb, pc, al, be, device, stream, c);
    }
  });
}

}  // namespace ternion::kernels::cuda

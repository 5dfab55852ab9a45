// Validation shared by the op files.
#pragma once

#include <string_view>

#include "autograd/record.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace ternion::autograd::detail {

inline void check_float(const Tensor& t, std::string_view op, std::string_view what) {
  TN_CHECK(t.defined(), op, what, " is undefined");
  TN_CHECK(is_floating(t.dtype()), op, what, " must be floating, got ", t.str());
}

inline void check_index(const Tensor& t, std::string_view op, std::string_view what) {
  TN_CHECK(t.defined(), op, what, " is undefined");
  TN_CHECK(t.dtype() == DType::i32 || t.dtype() == DType::i64, op, what,
           " must be i32 or i64, got ", t.str());
}

inline void check_like(const Tensor& a, const Tensor& b, std::string_view op) {
  TN_CHECK(a.dtype() == b.dtype(), op, "dtype mismatch: ", a.str(), " vs ", b.str());
  TN_CHECK(a.device() == b.device(), op, "device mismatch: ", a.str(), " vs ", b.str());
}

// Collapses all but the last dim: [...,C] -> [N,C] (contiguous).
inline Tensor rows(const Tensor& t) {
  Tensor c = t.contiguous();
  const int64_t cols = t.ndim() ? t.shape().back() : 1;
  return c.view({cols ? c.numel() / cols : 0, cols});
}

// Dtype of saved per-row statistics and of losses: f32 for the 16-bit storage types.
inline DType stats_dtype(DType d) { return d == DType::bf16 || d == DType::f16 ? DType::f32 : d; }

inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }
inline Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.dtype(), t.device()); }

}  // namespace ternion::autograd::detail

// Dtype conversion, elementwise on any shape:
//   out[i] = convert(x[i])                                                    (overwrite)
// Any pair of floating dtypes (f32, f64, bf16, f16); bf16 and f16 round to nearest even,
// as Tensor::copy_ does, which this kernel is.
#include "kernels/cpu/common.h"

namespace ternion::kernels::cpu {

void cast(const Tensor& x, Tensor& out) {
  TN_CHECK(is_floating(x.dtype()) && is_floating(out.dtype()), "cast", "converts floating dtypes, got ",
           x.str(), " -> ", out.str());
  TN_CHECK(x.numel() == out.numel() && x.is_contiguous() && out.is_contiguous(), "cast",
           "needs contiguous tensors of equal size, got ", x.str(), " -> ", out.str());
  out.view(x.shape()).copy_(x);
}

}  // namespace ternion::kernels::cpu

#include "train/precision.h"

#include "core/error.h"

namespace ternion::train {

Precision resolve_precision(const std::string& precision, Device device) {
  TN_CHECK(precision == "fp32" || precision == "bf16" || precision == "fp16", "train", "precision '",
           precision, "' is not one of fp32, bf16, fp16");
  if (precision == "fp32") return {};
  TN_CHECK(device.is_cuda(), "train", "precision '", precision,
           "' needs a CUDA device; this rank computes on ", device.str(),
           " and the CPU backend trains in fp32 (set precision: fp32)");
  // The cast kernel converts f16, but no other CUDA kernel computes in it yet.
  TN_CHECK(precision != "fp16", "train",
           "precision 'fp16' needs f16 CUDA kernels, and kernels/cuda computes in f32 and bf16 "
           "only; use precision: bf16 (same speed on tensor cores, no loss scaling needed)");
  return {DType::bf16, false};
}

optim::GradScalerOptions grad_scaler_options(const Precision& p) {
  optim::GradScalerOptions o;
  o.enabled = p.loss_scaling;
  return o;
}

double cuda_peak_flops(DType compute) { return compute == DType::f32 ? 67e12 : 989e12; }

}  // namespace ternion::train

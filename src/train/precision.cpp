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
  if (precision == "bf16") return {DType::bf16, false};
  return {DType::f16, true};
}

optim::GradScalerOptions grad_scaler_options(const Precision& p) {
  optim::GradScalerOptions o;
  o.enabled = p.loss_scaling;
  return o;
}

double cuda_peak_flops(DType compute) { return compute == DType::f32 ? 67e12 : 989e12; }

}  // namespace ternion::train

// The `precision` config key resolved against the device a rank computes on.
//   fp32: everything in f32.
//   bf16: f32 master weights, gradients and AdamW state; the forward and backward compute
//         in bf16 on casts of the weights (model::GptConfig::compute_dtype); LayerNorm
//         statistics, the loss and its logsumexp stay f32. No loss scaling (bf16 has f32's
//         exponent range).
//   fp16: as bf16 with f16 compute, plus dynamic loss scaling (optim::GradScaler).
// The CPU backend computes in f32 only; the CUDA kernels in f32, bf16 and f16.
#pragma once

#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "optim/grad_scaler.h"

namespace ternion::train {

struct Precision {
  DType compute = DType::f32;
  bool loss_scaling = false;
};

// Throws an Error naming the key `precision` when the mode cannot run on `device`.
Precision resolve_precision(const std::string& precision, Device device);

// The scaler a precision needs: enabled (PyTorch's defaults) only with loss scaling.
optim::GradScalerOptions grad_scaler_options(const Precision& p);

// Dense peak FLOP/s that MFU is stated against on a CUDA device for this compute dtype:
// an H100 SXM's 989 TFLOP/s for bf16/f16 tensor cores, 67 TFLOP/s for f32 without TF32.
double cuda_peak_flops(DType compute);

}  // namespace ternion::train

#include "train/precision.h"

#include <gtest/gtest.h>

#include <string>

namespace ternion::train {
namespace {

std::string error_of(const std::string& precision, Device device) {
  try {
    resolve_precision(precision, device);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Precision, Fp32RunsEverywhere) {
  for (Device d : {Device::cpu(), Device::cuda(0)}) {
    const Precision p = resolve_precision("fp32", d);
    EXPECT_EQ(p.compute, DType::f32);
    EXPECT_FALSE(p.loss_scaling);
    EXPECT_FALSE(grad_scaler_options(p).enabled);
  }
}

TEST(Precision, CpuRejectsMixedPrecisionNamingTheKey) {
  for (const char* mode : {"bf16", "fp16"}) {
    const std::string e = error_of(mode, Device::cpu());
    EXPECT_NE(e.find("precision '" + std::string(mode) + "'"), std::string::npos) << e;
    EXPECT_NE(e.find("fp32"), std::string::npos) << e;
  }
}

TEST(Precision, CudaBf16ComputesInBf16WithoutLossScaling) {
  const Precision p = resolve_precision("bf16", Device::cuda(0));
  EXPECT_EQ(p.compute, DType::bf16);
  EXPECT_FALSE(p.loss_scaling);
}

TEST(Precision, CudaFp16ComputesInF16WithLossScaling) {
  const Precision p = resolve_precision("fp16", Device::cuda(0));
  EXPECT_EQ(p.compute, DType::f16);
  EXPECT_TRUE(p.loss_scaling);
  EXPECT_TRUE(grad_scaler_options(p).enabled);
  EXPECT_NE(error_of("fp8", Device::cuda(0)).find("not one of"), std::string::npos);
}

TEST(Precision, LossScalingEnablesTheScaler) {
  const optim::GradScalerOptions o = grad_scaler_options({DType::f16, true});
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.init_scale, 65536.0);
  EXPECT_EQ(o.growth_interval, 2000);
}

}  // namespace
}  // namespace ternion::train

#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ternion {
namespace {

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_EQ(dtype_name(DType::u16), "u16");
  EXPECT_TRUE(is_floating(DType::f16));
  EXPECT_FALSE(is_floating(DType::i32));
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 0x1p-8f)), 1.0f);         // tie -> even
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);  // tie -> even (up)
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16ExactValuesAndLimits) {
  for (float v : {0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, 0x1p-24f, 0x1p-14f})
    EXPECT_EQ(static_cast<float>(f16(v)), v) << v;
  EXPECT_EQ(f16(1.0f).bits, 0x3c00);
  EXPECT_TRUE(std::isinf(static_cast<float>(f16(70000.0f))));
  EXPECT_EQ(static_cast<float>(f16(1.0f + 0x1p-11f)), 1.0f);  // tie -> even
  EXPECT_TRUE(std::isnan(static_cast<float>(f16(std::nanf("")))));
}

}  // namespace
}  // namespace ternion

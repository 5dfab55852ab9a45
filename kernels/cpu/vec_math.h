// exp in a form the compiler vectorises inside `#pragma omp simd` loops (std::exp is a
// scalar libm call). f32 only; f64 keeps std::exp, since f64 serves gradient checks.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace ternion::kernels::cpu::detail {

// Cephes expf: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two for exactness), then a
// degree-5 polynomial for e^r, scaled by 2^k through the exponent bits. Relative error
// within 2 ulp on [-87.3, 88.3]; below that 0 (the subnormal range is flushed), above +inf,
// NaN stays NaN.
inline float exp_f32(float x) {
  constexpr float kHi = 88.3762626647949f, kLo = -87.3365447505531f;
  float xc = x > kLo ? x : kLo;  // NaN -> kLo here, restored below
  xc = xc < kHi ? xc : kHi;
  // Round to nearest by the 1.5 * 2^23 trick (std::nearbyint/floor are libm calls on SSE2).
  const float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = xc - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  const float y = p * std::bit_cast<float>(bits);
  const float y_lo = x < kLo ? 0.0f : y;
  const float y_hi = x > kHi ? std::numeric_limits<float>::infinity() : y_lo;
  return x != x ? x : y_hi;
}

template <typename T>
inline T vexp(T x) {
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
  else return std::exp(x);
}

}  // namespace ternion::kernels::cpu::detail

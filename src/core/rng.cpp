#include "core/rng.h"

#include <xxhash.h>

#include <cmath>

namespace ternion {

double normal_at(uint64_t key, uint64_t index) {
  const PhiloxOut r = philox4x32(key, 0, index);
  // 53-bit uniforms from two words each; u1 in (0, 1] so log() is finite.
  const double u1 = ((static_cast<uint64_t>(r.v[0]) << 21 ^ r.v[1]) & ((1ull << 53) - 1)) * 0x1p-53 +
                    0x1p-53;
  const double u2 = ((static_cast<uint64_t>(r.v[2]) << 21 ^ r.v[3]) & ((1ull << 53) - 1)) * 0x1p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t stream_key(uint64_t seed, std::string_view name) {
  return XXH64(name.data(), name.size(), seed);
}

void init_normal(Tensor& out, uint64_t seed, std::string_view name, double mean, double std,
                 const Shape& global_shape, const Shape& offsets) {
  TN_CHECK(out.dtype() == DType::f32 || out.dtype() == DType::f64, "init_normal",
           "needs an f32 or f64 tensor, got ", out.str());
  TN_CHECK(out.device().is_cpu() && out.is_contiguous(), "init_normal",
           "needs a contiguous CPU tensor, got ", out.str());
  const int nd = out.ndim();
  TN_CHECK(static_cast<int>(global_shape.size()) == nd && static_cast<int>(offsets.size()) == nd,
           "init_normal", "block ", out.str(), " vs global ", shape_str(global_shape), " at ",
           shape_str(offsets));
  for (int i = 0; i < nd; ++i)
    TN_CHECK(offsets[i] >= 0 && offsets[i] + out.shape()[i] <= global_shape[i], "init_normal",
             "block ", out.str(), " at ", shape_str(offsets), " exceeds global ",
             shape_str(global_shape));
  const uint64_t key = stream_key(seed, name);
  const Shape gstrides = contiguous_strides(global_shape);
  const int64_t n = out.numel();
  const int64_t inner = nd ? out.shape()[nd - 1] : 1;
  auto fill = [&](auto* p) {
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < (inner ? n / inner : 0); ++row) {
      // Global flat index of this row's first element.
      int64_t rem = row, g = 0;
      for (int i = nd - 2; i >= 0; --i) {
        g += (rem % out.shape()[i] + offsets[i]) * gstrides[i];
        rem /= out.shape()[i];
      }
      if (nd) g += offsets[nd - 1];
      for (int64_t j = 0; j < inner; ++j)
        p[row * inner + j] = static_cast<std::remove_reference_t<decltype(*p)>>(
            mean + std * normal_at(key, static_cast<uint64_t>(g + j)));
    }
  };
  if (out.dtype() == DType::f32) fill(out.data<float>());
  else fill(out.data<double>());
}

void init_normal(Tensor& out, uint64_t seed, std::string_view name, double mean, double std) {
  init_normal(out, seed, name, mean, std, out.shape(), Shape(out.ndim(), 0));
}

}  // namespace ternion

// Test helpers: seeded random tensors.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "core/tensor.h"

namespace ternion::testing {

inline Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::f64, double std = 1.0) {
  Tensor t = Tensor::empty(shape, dtype);
  init_normal(t, seed, "test", 0.0, std);
  return t;
}

inline Tensor randint(const Shape& shape, int64_t hi, uint64_t seed, DType dtype = DType::i32) {
  std::vector<int64_t> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<int64_t>(uniform_at(seed, 7, i) * static_cast<float>(hi)) % hi;
  return Tensor::from_vector(v, shape).to(dtype);
}

}  // namespace ternion::testing

// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). A value is a pure
// function of (key, counter): no state advances, so any rank can compute any element of
// any tensor. This is what makes a parameter's initial value depend only on
// (seed, parameter name, global element index), and a tensor-parallel shard equal to the
// matching slice of the unsharded tensor.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "core/tensor.h"

#if defined(__CUDACC__)
#define TN_HOST_DEVICE __host__ __device__
#else
#define TN_HOST_DEVICE
#endif

namespace ternion {

struct PhiloxOut {
  uint32_t v[4];
};

// Philox4x32 with 10 rounds. key: 64 bits; counter: 128 bits as (hi, lo).
TN_HOST_DEVICE inline PhiloxOut philox4x32(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo) {
  uint32_t c0 = static_cast<uint32_t>(ctr_lo), c1 = static_cast<uint32_t>(ctr_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(ctr_hi), c3 = static_cast<uint32_t>(ctr_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits.
TN_HOST_DEVICE inline float uniform01(uint32_t x) { return static_cast<float>(x >> 8) * 0x1p-24f; }

// Standard normal for element `index` of the stream `key` (Box-Muller on two 32-bit draws).
double normal_at(uint64_t key, uint64_t index);
// Uniform in [0, 1) for element `index` of the stream (key, stream).
inline float uniform_at(uint64_t key, uint64_t stream, uint64_t index) {
  return uniform01(philox4x32(key, stream, index).v[0]);
}

// The key of a named stream: XXH64 of the name, seeded with the run seed.
uint64_t stream_key(uint64_t seed, std::string_view name);

// Fills `out` (f32 or f64, contiguous) with N(mean, std^2) values as the block of a
// global tensor of shape `global_shape` that starts at `offsets`: element (i0, i1, ...)
// of `out` takes the value of global element (offsets[0]+i0, offsets[1]+i1, ...), whose
// value depends only on (seed, name, its row-major global index).
void init_normal(Tensor& out, uint64_t seed, std::string_view name, double mean, double std,
                 const Shape& global_shape, const Shape& offsets);
// Same for the whole (unsharded) tensor.
void init_normal(Tensor& out, uint64_t seed, std::string_view name, double mean, double std);

}  // namespace ternion

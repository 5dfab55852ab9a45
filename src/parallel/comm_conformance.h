// Helpers of the communicator conformance tests (comm_conformance_test, run under mpirun by
// the shared MPI test main): the values every rank contributes, the host-computed
// expectation, and a comparison that reports the first mismatch once.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace ternion::parallel {

inline const DType kDtypes[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u16};
inline const ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax};

// Rank r's element i: a small integer, exact in every dtype (bf16 holds integers to 256).
inline double value(int r, int64_t i) { return static_cast<double>((i * 7 + r * 3) % 11 + r); }

inline std::vector<double> values(int r, int64_t n, int64_t first = 0) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = value(r, first + i);
  return v;
}
inline Tensor make(const std::vector<double>& v, DType d, Device dev = Device::cpu()) {
  return Tensor::from_vector<double>(v, {static_cast<int64_t>(v.size())}).to(d).to(dev);
}
inline std::vector<double> host(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

// Element i of the reduction over n ranks of value(r, first + i).
inline double reduce(ReduceOp op, DType d, int n, int64_t i, int64_t first = 0) {
  double acc = op == ReduceOp::kMax ? -1e300 : 0.0;
  for (int r = 0; r < n; ++r) acc = op == ReduceOp::kMax ? std::max(acc, value(r, first + i)) : acc + value(r, first + i);
  if (op == ReduceOp::kAvg) acc = is_floating(d) ? acc / n : std::trunc(acc / n);
  return acc;
}

inline double tolerance(DType d) {
  switch (d) {
    case DType::bf16: return 1e-2;
    case DType::f16: return 1e-3;
    case DType::f32: return 1e-6;
    default: return 1e-12;
  }
}

// One failure naming how many elements differ and the first of them, or none.
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want, DType d,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what << " " << dtype_name(d);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > tolerance(d) * std::max(1.0, std::abs(want[i]))) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad) {
    ADD_FAILURE() << what << " " << dtype_name(d) << ": " << bad << " of " << got.size()
                  << " elements differ, the first at [" << first << "]: got " << got[first] << ", want "
                  << want[first];
  }
}

// The world made for CUDA tensors (its NCCL communicator created with it), or nullptr
// where this build has no CUDA or the machine no GPU.
Communicator* cuda_world();

}  // namespace ternion::parallel

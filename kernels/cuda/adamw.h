// CUDA-only optimizer entry points beyond the kernel list of kernels.h.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/kernels.h"

namespace ternion::kernels::cuda {

// The adamw update of kernels.h applied to every (p[i], g[i], m[i], v[i]) with up to 64
// parameters per launch (f32, all on one device). REQUIRES: the four lists have the same
// length and each group shares one shape; step >= 1.
void adamw_multi_tensor(std::span<Tensor> p, std::span<const Tensor> g, std::span<Tensor> m,
                        std::span<Tensor> v, double lr, double beta1, double beta2, double eps,
                        double weight_decay, int64_t step);

}  // namespace ternion::kernels::cuda

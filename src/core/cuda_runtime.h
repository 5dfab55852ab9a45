// The few CUDA runtime services the core needs. Implemented in cuda_runtime.cu in CUDA
// builds and by no_cuda.cpp (which throws) in CPU-only builds.
#pragma once

#include <cstddef>

#include "core/allocator.h"
#include "core/device.h"

namespace ternion {

Allocator& cuda_allocator(int index);
// Copies `bytes` bytes between any two devices (at least one of them CUDA); synchronous.
void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void cuda_zero_bytes(void* dst, Device device, size_t bytes);
// Versions of the CUDA runtime and driver, e.g. "13.0"; "none" in CPU-only builds.
const char* cuda_version_string();

}  // namespace ternion

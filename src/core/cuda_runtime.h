// The few CUDA runtime services the core needs. Implemented in cuda_runtime.cu in CUDA
// builds and by no_cuda.cpp (which throws) in CPU-only builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"

namespace ternion {

using Shape = std::vector<int64_t>;

Allocator& cuda_allocator(int index);
// Copies `bytes` bytes between any two devices (at least one of them CUDA), ordered on the
// CUDA side's compute stream after the work already queued there. Returns once the host
// may reuse `src`; device to host, once `dst` holds the bytes (the host waits for the
// stream); device to device on one GPU, without waiting (later kernels and copies on the
// stream see the result). Between two GPUs: synchronous.
void cuda_copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// Zeros device memory, ordered on the compute stream; does not wait.
void cuda_zero_bytes(void* dst, Device device, size_t bytes);
// Copies a strided layout into another of the same shape on one CUDA device (views made
// contiguous, slices written in place); strides in elements of `elem` bytes (1, 2, 4 or
// 8), at most 8 dims; ordered on the compute stream like a device-to-device
// cuda_copy_bytes, without waiting.
void cuda_strided_copy(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides,
                       const Shape& shape, size_t elem, Device device);
// Versions of the CUDA runtime and driver, e.g. "13.0"; "none" in CPU-only builds.
const char* cuda_version_string();

}  // namespace ternion

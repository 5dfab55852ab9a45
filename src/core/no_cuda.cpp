// CPU-only build: the CUDA services exist and say clearly that they are absent.
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace ternion {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  fail(op, "this Ternion build has no CUDA backend (configured with TERNION_CUDA=OFF or without nvcc)");
}
}  // namespace

Allocator& cuda_allocator(int) { no_cuda("cuda_allocator"); }
void cuda_copy_bytes(void*, Device, const void*, Device, size_t) { no_cuda("cuda_copy"); }
void cuda_zero_bytes(void*, Device, size_t) { no_cuda("cuda_zero"); }
void cuda_strided_copy(void*, const Shape&, const void*, const Shape&, const Shape&, size_t, Device) {
  no_cuda("cuda_strided_copy");
}
const char* cuda_version_string() { return "none"; }
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }

}  // namespace ternion

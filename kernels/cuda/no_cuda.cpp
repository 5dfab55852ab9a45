// Builds without CUDA kernels link these stubs: every kernel of kernels.h exists for
// the CUDA device and throws an error naming itself. CUDA builds compile the *.cu
// files beside this one instead.
#include "kernels/kernels.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

namespace ternion::kernels::cuda {

namespace {
[[noreturn]] void no_cuda_kernel(const char* name) {
  fail(name, "no CUDA kernel in this build; move the tensors to the CPU");
}
}  // namespace

#define TN_STUB_KERNEL(name, sig) \
  void name sig { no_cuda_kernel(#name); }
TN_KERNEL_LIST(TN_STUB_KERNEL)
#undef TN_STUB_KERNEL

}  // namespace ternion::kernels::cuda

// TN_CUDA_CHECK(call): throws ternion::Error("[cuda] <call> failed: <reason> at file:line")
// when a CUDA runtime call fails. For the CUDA sources of core and kernels.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

#define TN_CUDA_CHECK(call)                                                                 \
  do {                                                                                      \
    cudaError_t err_ = (call);                                                              \
    if (err_ != cudaSuccess)                                                                \
      ::ternion::fail("cuda", ::ternion::str_cat(#call, " failed: ", cudaGetErrorString(err_), \
                                                 " at ", __FILE__, ":", __LINE__));         \
  } while (0)

// After a kernel launch: reports a bad configuration (grid, shared memory, no kernel image
// for this GPU) naming the kernel.
#define TN_CUDA_CHECK_LAUNCH(kernel_name)                                                   \
  do {                                                                                      \
    cudaError_t err_ = cudaGetLastError();                                                  \
    if (err_ != cudaSuccess)                                                                \
      ::ternion::fail("cuda", ::ternion::str_cat("launch of ", kernel_name, " failed: ",      \
                                                 cudaGetErrorString(err_), " at ", __FILE__, \
                                                 ":", __LINE__));                           \
  } while (0)

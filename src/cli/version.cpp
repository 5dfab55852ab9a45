#include <cblas.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/cuda_runtime.h"
#include "core/device.h"
#include "data/token_file.h"
#include "parallel/runtime.h"

#ifndef TERNION_VERSION
#define TERNION_VERSION "unknown"
#endif
// cuDNN: the version of the headers found at configure time (src/cli/CMakeLists.txt).
#ifndef TERNION_CUDNN_VERSION
#define TERNION_CUDNN_VERSION "none"
#endif

namespace ternion::cli {

int run_version(int, char**) {
  std::printf("ternion %s\n", TERNION_VERSION);
  std::printf("  cuda      %s (%d GPU%s visible)\n", cuda_version_string(), cuda_device_count(),
              cuda_device_count() == 1 ? "" : "s");
  std::printf("  cudnn     %s\n", TERNION_CUDNN_VERSION);
  std::printf("  nccl      %s\n", parallel::nccl_version_string().c_str());
  std::printf("  mpi       %s\n", parallel::mpi_library_version().c_str());
  std::printf("  hdf5      %s\n", data::hdf5_library_version().c_str());
  std::printf("  openblas  %s\n", openblas_get_config());
  return 0;
}

}  // namespace ternion::cli

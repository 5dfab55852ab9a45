#include <cblas.h>

#include <cstdio>

#include "cli/commands.h"
#include "core/cuda_runtime.h"
#include "core/device.h"

#ifndef TERNION_VERSION
#define TERNION_VERSION "unknown"
#endif

namespace ternion::cli {

int run_version(int, char**) {
  std::printf("ternion %s\n", TERNION_VERSION);
  std::printf("  cuda      %s (%d GPU%s visible)\n", cuda_version_string(), cuda_device_count(),
              cuda_device_count() == 1 ? "" : "s");
  std::printf("  openblas  %s\n", openblas_get_config());
  return 0;
}

}  // namespace ternion::cli

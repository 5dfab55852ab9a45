# System dependencies, all from Debian packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)  # src/parallel: host collectives and the runtime
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(PkgConfig REQUIRED)

# OpenBLAS: prefer the OpenMP build so that BLAS calls made inside our own OpenMP
# regions run single-threaded instead of oversubscribing the cores.
find_library(TERNION_OPENBLAS_LIB NAMES openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT TERNION_OPENBLAS_LIB)
  find_library(TERNION_OPENBLAS_LIB NAMES openblas REQUIRED)
endif()
find_path(TERNION_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas-openmp openblas x86_64-linux-gnu/openblas-openmp)
add_library(ternion_blas INTERFACE)
target_link_libraries(ternion_blas INTERFACE ${TERNION_OPENBLAS_LIB})
if(TERNION_CBLAS_INCLUDE)
  target_include_directories(ternion_blas SYSTEM INTERFACE ${TERNION_CBLAS_INCLUDE})
endif()

pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
find_package(absl REQUIRED)
find_package(glog REQUIRED)
find_package(yaml-cpp REQUIRED)

if(TERNION_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TERNION_BUILD_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

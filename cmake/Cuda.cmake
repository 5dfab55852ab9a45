# TERNION_CUDA=AUTO turns the CUDA backend on when nvcc and the toolkit are found.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()

set(TERNION_HAVE_CUDA OFF)
if(TERNION_CUDA STREQUAL "OFF")
  message(STATUS "Ternion: CUDA backend disabled (TERNION_CUDA=OFF)")
else()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)  # H100 / H200
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(TERNION_HAVE_CUDA ON)
    # CMake 3.25 predates nvcc's C++20 support: teach it the dialect flag.
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    message(STATUS "Ternion: CUDA backend enabled (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, arch ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(TERNION_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TERNION_CUDA=ON but no CUDA compiler was found (looked for nvcc on PATH and in /usr/local/cuda/bin)")
  else()
    message(STATUS "Ternion: CUDA backend disabled (no nvcc found)")
  endif()
endif()

# NCCL is part of the CUDA backend (collectives on device tensors, src/parallel); it ships
# beside the toolkit in /usr/local/cuda. CPU-only builds never look for it.
if(TERNION_HAVE_CUDA)
  find_path(TERNION_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(TERNION_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(NOT TERNION_NCCL_INCLUDE OR NOT TERNION_NCCL_LIB)
    message(FATAL_ERROR "The CUDA backend needs NCCL (nccl.h and libnccl), looked beside the CUDA "
                        "toolkit and in /usr/local/cuda; found include=${TERNION_NCCL_INCLUDE} "
                        "lib=${TERNION_NCCL_LIB}")
  endif()
  add_library(ternion::nccl INTERFACE IMPORTED)
  target_include_directories(ternion::nccl SYSTEM INTERFACE ${TERNION_NCCL_INCLUDE})
  target_link_libraries(ternion::nccl INTERFACE ${TERNION_NCCL_LIB})
  message(STATUS "Ternion: NCCL ${TERNION_NCCL_LIB}")
endif()

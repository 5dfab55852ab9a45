# Topology, pipeline schedules, parallel context, data parallelism and tensor parallelism's
# collectives as autograd ops (built on comm.cmake's
# ternion_comm).
add_library(ternion_parallel topology.cpp pipeline_schedule.cpp context.cpp data_parallel.cpp tensor_parallel.cpp
                             flat_layout.cpp powersgd.cpp)
target_link_libraries(ternion_parallel PUBLIC ternion_comm ternion_core PRIVATE ternion_autograd ternion_warnings)
ternion_test(topology_test SOURCES topology_test.cpp LIBS ternion_parallel TIMEOUT 120)
ternion_test(pipeline_schedule_test SOURCES pipeline_schedule_test.cpp LIBS ternion_parallel TIMEOUT 120)
# ZeRO's flat buffers: buckets, padding and each dp rank's range.
ternion_test(flat_layout_test SOURCES flat_layout_test.cpp LIBS ternion_parallel ternion_autograd TIMEOUT 120)
if(TERNION_BUILD_TESTS)
  add_executable(data_parallel_test data_parallel_test.cpp)
  target_link_libraries(data_parallel_test PRIVATE ternion_parallel ternion_autograd ternion_mpi_test_main ternion_warnings)
  ternion_mpi_test(NAME data_parallel_test NP 2 TIMEOUT 120)
  ternion_mpi_test(NAME data_parallel_test NP 3 TIMEOUT 120)
endif()

# Tensor parallelism's collectives as autograd ops, each against its definition, with the
# world as the tp group.
if(TERNION_BUILD_TESTS)
  add_executable(tensor_parallel_test tensor_parallel_test.cpp)
  target_link_libraries(tensor_parallel_test PRIVATE ternion_parallel ternion_autograd ternion_mpi_test_main
                        ternion_warnings)
  ternion_mpi_test(NAME tensor_parallel_test NP 2 TIMEOUT 120)
  ternion_mpi_test(NAME tensor_parallel_test NP 4 TIMEOUT 120)
endif()

# PowerSGD's compressor against a single-process reference of the algorithm.
if(TERNION_BUILD_TESTS)
  add_executable(powersgd_test powersgd_test.cpp)
  target_link_libraries(powersgd_test PRIVATE ternion_parallel ternion_mpi_test_main ternion_warnings)
  ternion_mpi_test(NAME powersgd_test NP 2 TIMEOUT 120)
  ternion_mpi_test(NAME powersgd_test NP 3 TIMEOUT 120)
endif()

# Topology, parallel context and data parallelism (built on comm.cmake's ternion_comm).
add_library(ternion_parallel topology.cpp context.cpp data_parallel.cpp)
target_link_libraries(ternion_parallel PUBLIC ternion_comm ternion_core PRIVATE ternion_autograd ternion_warnings)
ternion_test(topology_test SOURCES topology_test.cpp LIBS ternion_parallel TIMEOUT 120)

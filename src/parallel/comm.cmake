# Communicators and the MPI runtime (ternion_comm): MPI for host tensors, NCCL for CUDA
# tensors in CUDA builds (nccl_stub.cpp otherwise).
set(comm_sources communicator.cpp mpi_engine.cpp mpi_communicator.cpp roll_call.cpp roll_call_report.cpp
                 runtime.cpp)
if(TERNION_HAVE_CUDA)
  list(APPEND comm_sources nccl_communicator.cpp)
else()
  list(APPEND comm_sources nccl_stub.cpp)
endif()
list(TRANSFORM comm_sources PREPEND ${CMAKE_CURRENT_LIST_DIR}/)
add_library(ternion_comm ${comm_sources})
target_link_libraries(ternion_comm PUBLIC ternion_core MPI::MPI_C Threads::Threads PRIVATE ternion_warnings)
# mpi.h from C++ would otherwise pull in the deprecated MPI C++ bindings (and their library).
target_compile_definitions(ternion_comm PUBLIC OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
if(TERNION_HAVE_CUDA)
  target_link_libraries(ternion_comm PRIVATE ternion::nccl CUDA::cudart)
endif()

# ternion_mpi_test(NAME name NP n TIMEOUT s [TARGET target] [ARGS ...] [ENVIRONMENT ...]):
# the ctest `name.np<n>` runs executable `target` (default: `name`) under mpirun with n ranks,
# oversubscribed (CI machines have few cores), labelled mpi. Any rank failing fails the test.
# Open MPI's run-time keeps allocations past MPI_Finalize, many in plugins it has already
# unloaded (so no suppression can name them): leak checking is off for multi-rank tests in
# the sanitizer build; address and UB checks stay on.
# (A cache variable: ternion_mpi_test is called from other directories too.)
if(TERNION_SANITIZE)
  set(TERNION_MPI_TEST_ENV "ASAN_OPTIONS=detect_leaks=0;" CACHE INTERNAL "")
else()
  set(TERNION_MPI_TEST_ENV "" CACHE INTERNAL "")
endif()
function(ternion_mpi_test)
  if(NOT TERNION_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(M "" "NAME;TARGET;NP;TIMEOUT" "ARGS;ENVIRONMENT" ${ARGN})
  if(NOT M_TARGET)
    set(M_TARGET ${M_NAME})
  endif()
  if(NOT M_TIMEOUT)
    set(M_TIMEOUT 300)
  endif()
  set(M_NAME ${M_NAME}.np${M_NP})
  add_test(NAME ${M_NAME}
           COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe -np ${M_NP} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:${M_TARGET}> ${M_ARGS})
  set_tests_properties(${M_NAME} PROPERTIES TIMEOUT ${M_TIMEOUT} LABELS mpi
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1;${TERNION_MPI_TEST_ENV}${M_ENVIRONMENT}")
endfunction()

ternion_test(comm_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/communicator_test.cpp LIBS ternion_comm TIMEOUT 60)
# The timeout message for every case (who did not arrive, late, error elsewhere), without MPI.
ternion_test(roll_call_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/roll_call_test.cpp LIBS ternion_comm TIMEOUT 60)

# The shared main of the MPI test programs (mpi_test_main.h): runtime up, world made, every
# rank's verdict decides. Test programs link it instead of defining main().
if(TERNION_BUILD_TESTS)
  add_library(ternion_mpi_test_main STATIC ${CMAKE_CURRENT_LIST_DIR}/mpi_test_main.cpp)
  target_link_libraries(ternion_mpi_test_main PUBLIC ternion_comm GTest::gtest PRIVATE ternion_warnings)
endif()

# One program, three files: collectives, point-to-point, traffic counting.
if(TERNION_BUILD_TESTS)
  add_executable(comm_conformance_test ${CMAKE_CURRENT_LIST_DIR}/comm_conformance_test.cpp
                 ${CMAKE_CURRENT_LIST_DIR}/comm_p2p_test.cpp ${CMAKE_CURRENT_LIST_DIR}/comm_bytes_sent_test.cpp)
  target_link_libraries(comm_conformance_test PRIVATE ternion_mpi_test_main ternion_warnings)
  foreach(np 2 3 4)
    ternion_mpi_test(NAME comm_conformance_test NP ${np} TIMEOUT 300)
  endforeach()
endif()

# Fault injection: a rank throws, dies, stalls, is stopped or receives out of order mid-step;
# the job must end non-zero within the timeout instead of hanging, naming the rank that did
# not arrive, and the control must check its results (tests/e2e/comm_fault.sh checks
# status, time and stderr; *_slowkill: what the other ranks say when their waits end too).
if(TERNION_BUILD_TESTS)
  add_executable(comm_fault_test ${CMAKE_CURRENT_LIST_DIR}/comm_fault_test.cpp)
  target_link_libraries(comm_fault_test PRIVATE ternion_comm ternion_warnings)
  foreach(mode ok throw kill stall stop tag recv pause throw_slowkill stop_slowkill)
    add_test(NAME comm_fault.${mode}
             COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/comm_fault.sh ${MPIEXEC_EXECUTABLE}
                     $<TARGET_FILE:comm_fault_test> ${mode})
    set_tests_properties(comm_fault.${mode} PROPERTIES PASS_REGULAR_EXPRESSION "comm fault ${mode}: ok"
                         TIMEOUT 120 LABELS mpi ENVIRONMENT "${TERNION_MPI_TEST_ENV}")
  endforeach()
endif()

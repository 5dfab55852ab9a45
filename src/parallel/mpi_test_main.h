// The shared main of the MPI test programs (CMake target ternion_mpi_test_main): it
// initialises the runtime (MPI when started by mpirun), makes the world communicator, runs
// every test on every rank and makes the job fail when a test failed on any rank. Ranks
// other than 0 print only their failures, prefixed by their rank.
//
// A program that needs job-wide set-up (a shared directory, a ParallelContext) registers a
// ::testing::Environment (AddGlobalTestEnvironment from a namespace-scope initialiser); its
// SetUp runs on every rank after the world exists, its TearDown before the final verdict.
#pragma once

#include "parallel/communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel::testing {

// The process's runtime. REQUIRES: called while the shared main runs the tests.
Runtime& runtime();
// The world group (host tensors), shared by every test of the program. Its timeout is
// 120 s (TERNION_COMM_TIMEOUT_S overrides), so a rank stuck in a collective because a
// peer's assertion returned early fails the job with a message rather than by ctest's kill.
// REQUIRES: called while the shared main runs the tests.
Communicator& world();

}  // namespace ternion::parallel::testing

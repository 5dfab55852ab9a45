// MPI backend of Communicator (host tensors; CUDA tensors go to the group's lazily created
// NcclCommunicator). Internal to src/parallel: callers get communicators from Runtime.
//
// Execution: each communicator owns a communication thread that runs its operations in
// issue order, so async collectives progress while the caller computes (Open MPI only
// progresses nonblocking collectives inside MPI calls). A blocking call made while that
// thread is idle runs on the caller's thread instead, saving two thread hand-offs.
// Collectives use MPI's blocking calls (the tuned algorithms); point-to-point uses
// MPI_Isend/MPI_Irecv so that rings of send/recv cannot deadlock. A watchdog thread
// ends the job through fatal() when an operation runs past CommOptions::timeout.
//
// bf16 and f16 reductions are computed in f32 (one rounding at the end, as NCCL's
// accuracy or better); every other dtype reduces natively. Counts above INT_MAX are
// split into chunks.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel {

// Takes ownership of `comm` (a communicator of at least two ranks; freed on destruction
// unless MPI is already finalised). world_ranks[i] is group rank i's world rank.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, std::string name,
                                                    std::vector<int> world_ranks,
                                                    const CommOptions& options);

// The largest element count one MPI call carries (INT_MAX by default); tests lower it to
// exercise the chunked paths. Not thread safe: set it before communicating.
void set_mpi_max_count_for_testing(int64_t n);

// MPI_ERR_* → "MPI_ERR_TRUNCATE: message truncated".
std::string mpi_error_string(int code);

// Checks an MPI return code; on failure the job ends through fatal() naming the call,
// the place and `where` (a group description).
#define TN_MPI_CHECK(call, where)                                                        \
  do {                                                                                   \
    int rc_ = (call);                                                                    \
    if (rc_ != MPI_SUCCESS)                                                              \
      ::ternion::parallel::fatal(::ternion::str_cat(#call, " failed in ", (where), ": ",  \
                                                    ::ternion::parallel::mpi_error_string(rc_), \
                                                    " at ", __FILE__, ":", __LINE__));   \
  } while (0)

}  // namespace ternion::parallel

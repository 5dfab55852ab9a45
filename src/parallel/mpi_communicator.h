// MPI backend of Communicator (host tensors; CUDA tensors go to the group's
// NcclCommunicator, made with the group when CommOptions::device is a CUDA device).
// Internal to src/parallel: callers get communicators from Runtime.
//
// Execution: each communicator owns an MpiEngine (mpi_engine.h): a communication thread
// that runs its operations in issue order, so async collectives progress while the caller
// computes, an inline path for blocking calls made while it is idle, and a watchdog that
// ends the job through fatal() when an operation runs past CommOptions::timeout.
// Collectives use MPI's blocking calls (the tuned algorithms); point-to-point uses
// MPI_Isend/MPI_Irecv (an exchange posts all of its ops before any wait) so that rings of
// sends and receives cannot deadlock. Receives use MPI_ANY_TAG and check the tag and size
// they got: matching is by issue order per peer, as on NCCL (see P2POp).
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

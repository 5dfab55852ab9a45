// The device half of a group: collectives on CUDA tensors through NCCL. The MPI
// communicator of a group created with a CUDA CommOptions::device owns one, made when the
// group is (collective over the group: rank 0 makes the ncclUniqueId and broadcasts it
// over the group's MPI communicator; every member then joins ncclCommInitRank), so no
// later call, point-to-point included, ever initialises NCCL behind the others' backs.
//
// nccl_communicator.cpp implements it in CUDA builds; nccl_stub.cpp in CPU-only builds
// throws. NCCL runs on its own CUDA stream, ordered after the compute (legacy default)
// stream by an event recorded there at issue. A Work's wait() first makes the compute
// stream wait for the operation's completion event (cudaStreamWaitEvent: the device, not
// the host, orders later kernels and copies after it), then polls that event with
// ncclCommGetAsyncError at a bounded sleep interval until the group's timeout, after which
// the group's RollCall names the members that did not arrive, the NCCL communicator is
// aborted (ncclCommAbort) and the job ends through fatal().
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/roll_call.h"

namespace ternion::parallel {

class NcclCommunicator {
 public:
  virtual ~NcclCommunicator() = default;
  // Arguments are checked by the caller (comm_checks.h). Every call returns a started Work.
  virtual std::unique_ptr<Work> all_reduce(Tensor& t, ReduceOp op) = 0;
  virtual std::unique_ptr<Work> reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) = 0;
  virtual std::unique_ptr<Work> all_gather(const Tensor& in, Tensor& out) = 0;
  virtual std::unique_ptr<Work> all_gather_v(const Tensor& in, Tensor& out,
                                             const std::vector<int64_t>& counts) = 0;
  virtual std::unique_ptr<Work> broadcast(Tensor& t, int root) = 0;
  // One NCCL group of ncclSend/ncclRecv in the ops' order. NCCL has no tags: pairs match
  // in issue order per peer (see P2POp in communicator.h); tags are ignored here.
  virtual std::unique_ptr<Work> exchange(const std::vector<P2POp>& ops) = 0;
};

// Throws (naming `describe`) when this build cannot run NCCL; called before any MPI traffic.
void check_nccl_available(const std::string& describe);

// Collective over `comm` (an MPI communicator of `describe`'s group; not freed here): every
// member calls it at once, with the same `size`.
// `device` is the CUDA device this rank's tensors live on. `roll` is the group's RollCall:
// collectives are numbered there as they are issued, and a timeout's message comes from it.
// CPU-only builds: throws.
std::unique_ptr<NcclCommunicator> make_nccl_communicator(MPI_Comm comm, const std::string& describe,
                                                         int rank, int size, int device,
                                                         const CommOptions& options,
                                                         std::shared_ptr<RollCall> roll);

}  // namespace ternion::parallel

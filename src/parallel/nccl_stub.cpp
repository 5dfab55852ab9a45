// CPU-only build: there is no NCCL; CUDA tensors reaching a communicator say so clearly.
#include "core/error.h"
#include "parallel/nccl_communicator.h"

namespace ternion::parallel {

void check_nccl_available(const std::string& describe) {
  fail("communicator", describe + " got a CUDA tensor, but this Ternion build has no CUDA "
                       "backend (configured with TERNION_CUDA=OFF or without nvcc)");
}

std::unique_ptr<NcclCommunicator> make_nccl_communicator(MPI_Comm, const std::string& describe,
                                                         int, int, int, const CommOptions&,
                                                         std::shared_ptr<RollCall>) {
  check_nccl_available(describe);
  return nullptr;
}

std::string nccl_version_string() { return "none"; }

}  // namespace ternion::parallel

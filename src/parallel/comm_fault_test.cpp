// Fault injection for tests/e2e/comm_fault.sh: rank 1 of the world misbehaves before the
// first collective of a step loop, and the whole job must end non-zero, promptly, with an
// error that names the rank or the collective. Usage: comm_fault_test MODE, MODE one of
//   ok     every rank completes (the control)
//   throw  rank 1 throws mid-step; run_ranked turns it into fatal() → MPI_Abort
//   kill   rank 1 SIGKILLs itself; mpirun or the others' timeout ends the job
//   stall  rank 1 stays alive but never arrives; the others' timeout ends the job
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "parallel/runtime.h"

using namespace ternion;
using namespace ternion::parallel;

int main(int argc, char** argv) {
  Runtime& rt = Runtime::init(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "ok";
  return run_ranked([&] {
    auto world = rt.world();
    Tensor grad = Tensor::full({4096}, 1.0);
    for (int step = 0; step < 5; ++step) {
      if (step == 2 && rt.rank() == 1) {
        if (mode == "throw") throw Error("[step] injected failure at step 2");
        if (mode == "kill") raise(SIGKILL);
        if (mode == "stall") for (;;) pause();
      }
      world->all_reduce(grad, ReduceOp::kSum);
    }
    if (rt.rank() == 0) std::printf("comm_fault_test %s: all steps done\n", mode.c_str());
    return 0;
  });
}

// Fault injection for tests/e2e/comm_fault.sh: rank 1 of the world misbehaves in step 2
// of a loop of all-reduces, and the whole job must end non-zero, promptly, with an error
// that names the rank or the call and the group. Usage: comm_fault_test MODE, MODE one of
//   ok     every rank completes (the control); every rank checks every sum and its
//          traffic count, exiting non-zero on a wrong one
//   throw  rank 1 throws mid-step; run_ranked turns it into fatal() → MPI_Abort
//   kill   rank 1 SIGKILLs itself; mpirun or the others' timeout ends the job
//   stall  rank 1 stays alive but never arrives; the others' timeout ends the job, naming
//          it as answering but behind
//   stop   rank 1 SIGSTOPs itself (all its threads stop, so it cannot answer); the others'
//          timeout ends the job, naming it as not arriving. With COMM_FAULT_PIDFILE set it
//          first writes its pid there, so the script can make sure nothing is left stopped
//   tag    rank 1 receives rank 0's two messages in the wrong order; the tag check ends
//          the job (NCCL would have paired them silently)
//   recv   rank 0 waits to receive from rank 1, which never sends (it stalls); rank 0's
//          timeout names the receive and rank 1 as alive, the others' names both as behind
//   pause  rank 1 enters a collective at once and is stopped there for 5.7 s (the script
//          resumes it); the others arrive 7 s late. Its deadline has passed by then, but
//          the pause does not count against it, so the call completes and the run ends
//          as ok does
// With COMM_FAULT_IGNORE_SIGTERM set every rank ignores SIGTERM, so Open MPI's abort kills
// them only after odls_base_sigkill_timeout: the script's *_slowkill variants use it to see
// what the other ranks say when their own waits end after a rank has ended the job.
// The script asserts the exit status, the time taken and the message on stderr.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "parallel/runtime.h"

using namespace ternion;
using namespace ternion::parallel;

namespace {

constexpr int kSteps = 5;
constexpr int64_t kN = 4096;

// Sends tag 1 then tag 2 from rank 0; rank 1 asks for tag 2 first.
void misordered_receive(Communicator& world) {
  Tensor a = Tensor::full({kN}, 1.0), b = Tensor::full({kN}, 2.0);
  if (world.rank() == 0) {
    auto first = world.send_async(a, 1, 1);
    auto second = world.send_async(b, 1, 2);
    first->wait();
    second->wait();
  } else if (world.rank() == 1) {
    world.recv(b, 0, 2);
    world.recv(a, 0, 1);
  }
}

void stop_self() {
  if (const char* path = std::getenv("COMM_FAULT_PIDFILE")) {
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "%d\n", static_cast<int>(getpid()));
      std::fclose(f);
    }
  }
  raise(SIGSTOP);
}

// The loop of all-reduces, rank 1 misbehaving in step 2 as `mode` says; returns 0 when
// every rank's sums and traffic count check.
int run_steps(Runtime& rt, const std::string& mode) {
  auto world = rt.world();
  Tensor grad = Tensor::full({kN}, 1.0);
  for (int step = 0; step < kSteps; ++step) {
    if (step == 2) {
      if (mode == "tag") misordered_receive(*world);
      if (mode == "recv" && rt.rank() == 0) {
        Tensor t = Tensor::empty({kN});
        world->recv(t, 1, 5);
      }
      if (mode == "pause") {
        if (rt.rank() == 1) {
          std::thread([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            stop_self();
          }).detach();
        } else {
          std::this_thread::sleep_for(std::chrono::seconds(7));
        }
      }
      if (rt.rank() == 1) {
        if (mode == "throw") throw Error("[step] injected failure at step 2");
        if (mode == "kill") raise(SIGKILL);
        if (mode == "stall" || mode == "recv") for (;;) pause();
        if (mode == "stop") stop_self();
      }
    }
    world->all_reduce(grad, ReduceOp::kSum);
  }
  // Every element is n^steps; the count is the all-reduce convention, 2(n-1)/n·S a step.
  const int n = world->size();
  const float want = static_cast<float>(std::pow(n, kSteps));
  const std::vector<float> got = grad.to_vector<float>();
  bool ok = true;
  for (size_t i = 0; i < got.size() && ok; ++i) {
    if (got[i] != want) {
      std::fprintf(stderr, "comm_fault_test %s: rank %d: element %zu is %g, want %g\n", mode.c_str(), rt.rank(), i,
                   static_cast<double>(got[i]), static_cast<double>(want));
      ok = false;
    }
  }
  const int64_t bytes = kSteps * (2 * (n - 1) * kN * 4 / n);
  if (world->bytes_sent() != bytes) {
    std::fprintf(stderr, "comm_fault_test %s: rank %d: bytes_sent %lld, want %lld\n", mode.c_str(), rt.rank(),
                 static_cast<long long>(world->bytes_sent()), static_cast<long long>(bytes));
    ok = false;
  }
  if (world->all_true(ok) && rt.rank() == 0) {
    std::printf("comm_fault_test %s: all steps done, sums checked\n", mode.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Runtime& rt = Runtime::init(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "ok";
  if (std::getenv("COMM_FAULT_IGNORE_SIGTERM")) signal(SIGTERM, SIG_IGN);
  return run_ranked([&] { return run_steps(rt, mode); });
}

// Runtime: the process's place in the job. Initialises MPI (MPI_Init_thread) when the
// process was started by a launcher (mpirun, srun --mpi=pmix); a process started alone is a
// world of one and never touches MPI. Rank, world size, local rank and node come from MPI
// itself (a shared-memory split), so the same binary works under mpirun and srun.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace ternion::parallel {

struct RuntimeInfo {
  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;  // index among the ranks of this node
  int local_size = 1;
  int node = 0;        // index of this node (0 .. num_nodes-1, ordered by lowest world rank)
  int num_nodes = 1;
  bool mpi = false;    // MPI was initialised (launched by mpirun/srun)
  std::string hostname;
};

class Runtime {
 public:
  // Initialises once per process (later calls return the same runtime). Thread level:
  // MPI_THREAD_MULTIPLE requested; collectives are issued from one thread at a time.
  static Runtime& init(int* argc = nullptr, char*** argv = nullptr);
  // The runtime, or nullptr before init().
  static Runtime* get();
  // Finalises MPI (also at exit). After it no call may communicate.
  static void shutdown();

  const RuntimeInfo& info() const { return info_; }
  int rank() const { return info_.world_rank; }
  int size() const { return info_.world_size; }

  // Communicators made here take their timeout from `options`, unless the environment
  // variable TERNION_COMM_TIMEOUT_S (seconds, > 0, fractions allowed) is set: it then
  // replaces options.timeout for every communicator (operators and fault tests use it).
  // With MPI up, both calls are collective over the world (every rank, same order).

  // All ranks of the job.
  std::unique_ptr<Communicator> world(const CommOptions& options = {});
  // Collective over the world: every rank passes the same partition of the world ranks
  // (`groups`: disjoint lists, together holding every rank once) and receives the
  // communicator of the group that holds it, named `name`, its members ordered as listed.
  std::unique_ptr<Communicator> new_group(const std::string& name,
                                          const std::vector<std::vector<int>>& groups,
                                          const CommOptions& options = {});

 private:
  Runtime() = default;
  RuntimeInfo info_;
  friend struct RuntimeAccess;
};

// Prints "ternion: rank R: <message>" to stderr, flushes, and ends the whole job with a
// non-zero status: MPI_Abort over the world when MPI is up (so no other rank hangs),
// otherwise std::exit(1). For errors after communicators exist (a collective timed out, a
// rank threw mid-step); errors found before then are thrown and reported normally. Before
// aborting it tells the members of this rank's groups that it is ending the job
// (roll_call.h), so that none whose own wait ends meanwhile reports a timeout instead.
[[noreturn]] void fatal(const std::string& message);

// The MPI library's own version line ("Open MPI v4.1.4, ..."); callable before init.
std::string mpi_library_version();
// "2.27.7", or "none" in builds without NCCL.
std::string nccl_version_string();

// Runs a rank's main and returns its status; an exception escaping it ends the whole job
// through fatal(what()) so that no other rank waits forever in a collective for this one.
// Use it around everything after Runtime::init() in a distributed program's main.
int run_ranked(const std::function<int()>& rank_main);

}  // namespace ternion::parallel

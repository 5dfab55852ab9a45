// Runtime: MPI start-up and shutdown, the node layout, group creation and fatal().
#include "parallel/runtime.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

#include "parallel/mpi_communicator.h"
#include "parallel/roll_call.h"

namespace ternion::parallel {

struct RuntimeAccess {
  static Runtime* make() { return new Runtime(); }
  static RuntimeInfo& info(Runtime& r) { return r.info_; }
};

namespace {

Runtime* g_runtime = nullptr;  // never destroyed: fatal() and atexit may run late
std::mutex g_init_mu;

bool mpi_up() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

// A launcher that speaks PMI/PMIx left its marks in the environment.
bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}) {
    if (std::getenv(var)) return true;
  }
  return false;
}

std::string local_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

CommOptions with_env(CommOptions options) {
  if (const char* s = std::getenv("TERNION_COMM_TIMEOUT_S")) {
    char* end = nullptr;
    const double secs = std::strtod(s, &end);
    TN_CHECK(end != s && *end == '\0' && secs > 0, "runtime",
             "TERNION_COMM_TIMEOUT_S must be a positive number of seconds, got '", s, "'");
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(secs * 1000.0 + 0.5));
  }
  return options;
}

void finalize_at_exit() { Runtime::shutdown(); }

void init_mpi(int* argc, char*** argv, RuntimeInfo& info) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    throw Error("[runtime] MPI_Init_thread failed");
  }
  std::atexit(finalize_at_exit);
  // Errors come back to TN_MPI_CHECK, which names the call and the group.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  TN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info.world_rank), "world");
  TN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info.world_size), "world");
  info.mpi = true;
  if (provided < MPI_THREAD_MULTIPLE) {
    fatal(str_cat("the MPI library provides thread level ", provided,
                  " but Ternion's communication threads need MPI_THREAD_MULTIPLE"));
  }
  // Ranks sharing memory form a node; nodes are numbered by their lowest world rank.
  MPI_Comm local;
  TN_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.world_rank,
                                   MPI_INFO_NULL, &local),
               "world");
  TN_MPI_CHECK(MPI_Comm_rank(local, &info.local_rank), "node");
  TN_MPI_CHECK(MPI_Comm_size(local, &info.local_size), "node");
  int leader = info.world_rank;
  TN_MPI_CHECK(MPI_Bcast(&leader, 1, MPI_INT, 0, local), "node");
  MPI_Comm_free(&local);
  std::vector<int> leaders(static_cast<size_t>(info.world_size));
  TN_MPI_CHECK(MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, MPI_COMM_WORLD), "world");
  std::set<int> distinct(leaders.begin(), leaders.end());
  info.num_nodes = static_cast<int>(distinct.size());
  info.node = static_cast<int>(std::distance(distinct.begin(), distinct.find(leader)));
}

}  // namespace

Runtime& Runtime::init(int* argc, char*** argv) {
  std::lock_guard<std::mutex> lock(g_init_mu);
  if (g_runtime) return *g_runtime;
  Runtime* rt = RuntimeAccess::make();
  RuntimeInfo& info = RuntimeAccess::info(*rt);
  info.hostname = local_hostname();
  if (launched_by_mpi()) init_mpi(argc, argv, info);
  g_runtime = rt;
  return *rt;
}

Runtime* Runtime::get() { return g_runtime; }

void Runtime::shutdown() {
  if (!mpi_up()) return;
  RollCall::stop_all();  // a communicator still alive makes no MPI call from here on
  MPI_Finalize();
}

std::unique_ptr<Communicator> Runtime::world(const CommOptions& options) {
  std::vector<std::vector<int>> all(1);
  for (int r = 0; r < size(); ++r) all[0].push_back(r);
  return new_group("world", all, options);
}

std::unique_ptr<Communicator> Runtime::new_group(const std::string& name,
                                                 const std::vector<std::vector<int>>& groups,
                                                 const CommOptions& options) {
  // Every rank checks the partition, so a bad one fails everywhere before communicating.
  std::vector<int> seen(static_cast<size_t>(size()), 0);
  int color = -1, key = -1;
  for (size_t g = 0; g < groups.size(); ++g) {
    TN_CHECK(!groups[g].empty(), "new_group", "group ", name, ": partition has an empty group");
    for (size_t i = 0; i < groups[g].size(); ++i) {
      const int r = groups[g][i];
      TN_CHECK(r >= 0 && r < size(), "new_group", "group ", name, ": rank ", r,
               " outside the world of ", size());
      TN_CHECK(seen[static_cast<size_t>(r)]++ == 0, "new_group", "group ", name, ": rank ", r,
               " listed twice");
      if (r == rank()) {
        color = static_cast<int>(g);
        key = static_cast<int>(i);
      }
    }
  }
  for (int r = 0; r < size(); ++r) {
    TN_CHECK(seen[static_cast<size_t>(r)], "new_group", "group ", name, ": rank ", r,
             " is in no group (the groups must partition the world)");
  }
  const std::vector<int>& mine = groups[static_cast<size_t>(color)];
  if (!info_.mpi) return make_self_communicator(name, rank());
  MPI_Comm comm;
  TN_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm), "new_group " + name);
  if (mine.size() == 1) {  // the identity: no MPI traffic, no threads
    MPI_Comm_free(&comm);
    return make_self_communicator(name, rank());
  }
  return make_mpi_communicator(comm, name, mine, with_env(options));
}

void fatal(const std::string& message) {
  static std::atomic<bool> once{false};
  if (once.exchange(true)) {  // another thread is already ending the job
    for (;;) pause();
  }
  const int rank = g_runtime ? g_runtime->rank() : 0;
  std::fflush(stdout);
  // One write, so that ranks printing at once do not splice their lines.
  const std::string line = "ternion: rank " + std::to_string(rank) + ": " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
  // Peers whose own wait ends before the abort reaches them then report this rank's
  // failure, not a timeout of theirs.
  RollCall::announce_job_ending();
  if (mpi_up()) MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

int run_ranked(const std::function<int()>& rank_main) {
  try {
    return rank_main();
  } catch (const std::exception& e) {
    fatal(e.what());
  } catch (...) {
    fatal("unknown exception");
  }
}

std::string mpi_library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(buf, &len) != MPI_SUCCESS) return "unknown";
  std::string v(buf, static_cast<size_t>(len));
  const size_t cut = v.find_first_of(",\n");
  return cut == std::string::npos ? v : v.substr(0, cut);
}

}  // namespace ternion::parallel

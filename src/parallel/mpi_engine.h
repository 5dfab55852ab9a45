// MpiEngine: runs one group's MPI operations one at a time, in issue order, and bounds
// each by the group's timeout. Internal to the MPI backend (mpi_communicator.cpp).
//
// An operation is a function that issues MPI calls. Blocking collectives run to completion
// inside it; point-to-point operations leave nonblocking requests in `Requests`, which the
// engine then polls (MPI_Testall) beside later operations, so a ring of sends and receives
// issued as separate operations cannot deadlock.
//
// Threads: submit() queues the operation for the engine's communication thread, which
// progresses it while the caller computes (Open MPI progresses nonblocking calls only
// inside MPI calls). run_blocking() runs the operation on the caller's thread when the
// engine is idle (saving two thread hand-offs) and otherwise queues it and waits; either
// way operations never overlap and keep issue order. Every method may be called from any
// thread.
//
// Failure: an operation running past the timeout (a watchdog thread checks every 100 ms
// or sooner), requests not complete by their deadline, an MPI error, or an exception from
// an operation run on the communication thread end the job through fatal(), naming the
// operation and the group. The watchdog also ticks the group's RollCall (roll_call.h),
// which answers peers' questions and writes a timeout's message, naming the members that
// did not arrive; time this process was not running (stopped, starved) does not count
// towards a deadline. An exception from an operation run inline propagates to the caller.
// Destruction waits for every queued operation, then frees the MPI communicator (unless
// MPI is already finalised).
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/roll_call.h"

namespace ternion::parallel {

// What an operation leaves for the engine to complete.
struct Requests {
  std::vector<MPI_Request> list;
  std::vector<P2PPart> parts;  // list[i]'s peer and direction, named if it times out
  // Runs on the communication thread once every request is complete, with their statuses
  // in `list`'s order (receives check the tag and size they got); may call fatal().
  std::function<void(const std::vector<MPI_Status>&)> on_complete;
};
using OpFn = std::function<void(Requests&)>;

// Completion flag of one submitted operation.
struct OpState {
  std::atomic<bool> done{false};
};

// Collectives are numbered for the RollCall as they are issued; point-to-point is not.
enum class OpKind { kCollective, kPointToPoint };

class MpiEngine {
 public:
  // Takes ownership of `comm` (collective over it: makes the group's RollCall). `describe`
  // names the group in error messages; world_ranks[i] is group rank i's world rank.
  MpiEngine(MPI_Comm comm, std::string describe, std::vector<int> world_ranks,
            std::chrono::milliseconds timeout);
  ~MpiEngine();
  MpiEngine(const MpiEngine&) = delete;
  MpiEngine& operator=(const MpiEngine&) = delete;

  MPI_Comm comm() const { return comm_; }
  const std::string& describe() const { return describe_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // Shared with the group's NCCL communicator, whose collectives it numbers too.
  const std::shared_ptr<RollCall>& roll_call() const { return roll_; }

  // Queues `fn` (named `name` in errors: a string literal) for the communication thread.
  std::shared_ptr<OpState> submit(const char* name, OpKind kind, OpFn fn);
  // Runs collective `fn`, which must leave no requests, to completion (inline when idle).
  void run_blocking(const char* name, OpFn fn);
  // Blocks until `s` is done (the engine enforces the timeout).
  void wait(const OpState& s);

 private:
  struct Op {
    const char* name = nullptr;
    int64_t call = 0;  // the RollCall's number of a collective; 0 for point-to-point
    OpFn fn;
    std::shared_ptr<OpState> state;
  };
  using Clock = std::chrono::steady_clock;
  struct Pending {
    Requests reqs;
    std::shared_ptr<OpState> state;
    const char* name;
    Clock::time_point deadline;
    std::chrono::nanoseconds stalled_at;  // roll_->stalled() when posted
  };

  std::shared_ptr<OpState> enqueue(const char* name, int64_t call, OpFn fn);
  void begin_locked(const char* name, int64_t call);
  void end();
  void complete(OpState& s);
  [[noreturn]] void p2p_timed_out(const Pending& p);
  void loop();
  void poll_pending(int& idle_polls);
  void watchdog();

  MPI_Comm comm_;
  const std::string describe_;
  std::shared_ptr<RollCall> roll_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, dog_cv_;
  std::deque<Op> queue_;
  bool running_ = false;  // an operation is executing (here or inline)
  bool stop_ = false;
  const char* busy_name_ = nullptr;
  int64_t busy_call_ = 0;
  Clock::time_point busy_deadline_;
  std::chrono::nanoseconds busy_stalled_at_{0};
  std::vector<Pending> pending_;  // communication thread only
  std::thread thread_, dog_;
};

// A Work over one submitted operation (null state: already done); waits when destroyed.
std::unique_ptr<Work> make_mpi_work(std::shared_ptr<MpiEngine> engine, std::shared_ptr<OpState> state);

}  // namespace ternion::parallel

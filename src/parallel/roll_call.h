// RollCall: when a call of a group times out, find out which members never reached it.
// Internal to the MPI and NCCL backends (mpi_engine.cpp, nccl_communicator.cpp).
//
// While calls complete nothing is exchanged: each member numbers the collective calls it
// issues in the group (enter(): a counter; every member issues the same collectives in the
// same order, so call #k is the same call everywhere). When one of this rank's calls times
// out, it asks the members it waited for, over a duplicate of the group's MPI communicator,
// how far they have got: one small message each way, answers awaited for at most
// answer_wait() (a fifth of the timeout, between 1 and 5 s). Members answer from their
// engine's watchdog thread (tick(), every 100 ms or sooner), so one that computes, waits in
// another group or waits in this very call answers; one that is stopped (SIGSTOP, a
// debugger) or dead does not. describe_timeout() turns what this rank learnt into the
// message fatal() prints.
//
// Two more things keep the message honest. A process that was not running (more than 1 s
// between two looks at the clock, which its watchdog takes every 100 ms: stopped, or
// starved of CPU) adds that pause to its deadlines (stalled()), so on resuming it does not
// time out for its own absence; and a peer that
// asked it about a call it had not reached, or asked while it was stopped, is remembered: if
// this rank then times out, it says it was the late one. And fatal() tells the members of
// this rank's groups that it is ending the job (announce_job_ending()), also of groups whose
// communicator an exception destroyed on its way to run_ranked's fatal(), so a rank whose own
// wait ends later reports that rank's error, or its timeout, instead of a timeout of its own.
//
// Every message on the duplicate is sent by a rank that is ending the job or in answer to
// one, so no message outlives the job on a communicator a later one could reuse.
//
// Thread safety: every method may be called from any thread. REQUIRES: MPI initialised
// with MPI_THREAD_MULTIPLE. Runtime::shutdown() calls stop_all() before MPI_Finalize, so a
// communicator that outlives it makes no more MPI calls from its watchdog.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ternion::parallel {

// One send or receive of a point-to-point operation that did not complete.
struct P2PPart {
  int peer;  // group rank
  bool recv;
};

// What a peer announced: nothing, that it is ending the job for an error, or after a timeout.
enum class Ending : int64_t { kNo = 0, kError = 1, kTimeout = 2 };

// What one rank knows when its call times out (the input of describe_timeout()).
struct TimeoutFacts {
  struct Peer {
    bool asked = false;     // this rank asked it where it is
    bool answered = false;
    int64_t reached = 0;    // collective calls it had issued in the group (answer or notice)
    std::string call_name;  // what its call #call was ("" if it had not issued it)
    Ending ended = Ending::kNo;  // it announced that it is ending the job
    bool gave_up_on_us = false;  // it timed out waiting for this rank, which was behind or stopped
  };
  std::string op;                // "all_reduce", "recv", ...
  std::string group;             // "group dp (world ranks 0,2)"
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds answer_wait{0};
  int64_t call = 0;              // collective call number; 0 for point-to-point
  std::vector<int> world_ranks;  // member i's world rank
  int self = 0;                  // this rank's group rank
  std::vector<Peer> peers;       // by group rank (this rank's entry unused)
  std::vector<P2PPart> parts;    // point-to-point: the parts that did not complete
  std::chrono::milliseconds stalled{0};  // this process was not running for this long
};

// "[all_reduce] timed out after 5 s in group world (world ranks 0,1,2,3) at call #3: world
// rank 1 did not arrive (no answer within 1 s: stalled or dead); this rank and world ranks
// 2,3 were waiting". Never says "timed out" when a peer ended the job with an error, nor
// blames peers when this rank was the late one. Pure: tested without MPI.
std::string describe_timeout(const TimeoutFacts& f);
// "0,2,3" or "0-5,7" (runs of three or more as ranges).
std::string rank_list(const std::vector<int>& ranks);

class RollCall {
 public:
  using Clock = std::chrono::steady_clock;

  // Collective over `comm` (duplicates it; `comm` itself is neither used later nor freed).
  RollCall(MPI_Comm comm, std::string describe, std::vector<int> world_ranks, int rank,
           std::chrono::milliseconds timeout);
  ~RollCall();
  RollCall(const RollCall&) = delete;
  RollCall& operator=(const RollCall&) = delete;

  // This rank issues collective `name` (a string literal); returns its number (1, 2, ...).
  // Call in issue order, on the issuing thread. No communication.
  int64_t enter(const char* name);
  // Looks at the clock (stalled(now)), then answers what peers sent. Called by the
  // engine's watchdog every 100 ms or sooner. No communication unless a peer asked.
  void tick(Clock::time_point now);
  // The total time this process was found not running, up to `now`: a gap of more than 1 s
  // since the previous look (by any thread) counts once. A wait's deadline moves by the
  // part of this that fell inside the wait; a check reads the clock once and passes that
  // `now` here and to its comparison, so that a stop in between cannot make it fire.
  std::chrono::nanoseconds stalled(Clock::time_point now);
  std::chrono::milliseconds answer_wait() const;

  // The message for collective call `call` (`name`) of this rank that timed out: asks every
  // other member where it is (at most answer_wait()). Never fails.
  std::string collective_timeout(const char* name, int64_t call);
  // The same for a send, receive or exchange: asks the peers of the parts left incomplete.
  std::string p2p_timeout(const char* name, const std::vector<P2PPart>& parts);

  // Called by fatal() before it aborts the job: tells every member of every live group in
  // this process that this rank is ending the job (after a timeout of its own if one of its
  // RollCalls reported one, otherwise for an error), waiting at most 100 ms for the messages
  // to leave. Best effort; never fails. A RollCall destroyed while an exception unwinds
  // keeps its duplicate communicator for this (an error, to its members); if the job goes
  // on instead, that communicator is leaked.
  static void announce_job_ending();
  // Called by Runtime::shutdown() before MPI_Finalize: every live RollCall stops answering
  // and asking (waiting for a tick that is answering now).
  static void stop_all();

 private:
  struct Outgoing;
  std::string timeout_report(const char* name, int64_t call, const std::vector<P2PPart>& parts);
  void ask(const std::vector<int>& peers, int64_t call, TimeoutFacts& f);
  void serve_locked();
  void post_inbox_locked();
  void send_locked(int peer, int tag, const void* data, int bytes);
  void announce(Ending kind);

  MPI_Comm diag_ = MPI_COMM_NULL;
  const std::string describe_;
  const std::vector<int> world_ranks_;
  const int rank_;
  const std::chrono::milliseconds timeout_;

  std::mutex calls_mu_;  // the numbering (enter) and the recent calls' names
  int64_t issued_ = 0;
  std::vector<const char*> recent_;  // the names of the last calls, by number modulo size

  std::mutex mu_;  // the inbox, answers going out and what peers said; a roll call holds it and serves
  bool stopped_ = false;  // stop_all() was called
  int64_t inbox_[3] = {0, 0, 0};  // a notice: {kind, a, b}
  MPI_Request inbox_req_ = MPI_REQUEST_NULL;
  std::deque<std::unique_ptr<Outgoing>> outgoing_;
  std::vector<int64_t> gave_up_at_;     // by group rank: a call it timed out at before this rank issued it
  std::vector<bool> gave_up_while_stopped_;  // by group rank: it asked while this process was stopped
  std::vector<Ending> ended_;           // by group rank
  std::vector<int64_t> ended_reached_;  // by group rank: its calls issued when it ended
  std::mutex stall_mu_;  // the stall clock
  Clock::time_point last_look_;
  std::chrono::nanoseconds stalled_{0};
  std::chrono::nanoseconds last_stall_{0};  // the latest pause
  Clock::time_point last_stall_end_;
  std::atomic<bool> stall_unserved_{false};  // questions waiting now were asked during it
};

}  // namespace ternion::parallel

// RollCall: the questions and answers on the group's duplicate communicator, the stall
// clock and fatal()'s announcement. See roll_call.h; the message itself is
// roll_call_report.cpp.
#include "parallel/roll_call.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <thread>

#include "parallel/mpi_communicator.h"

namespace ternion::parallel {
namespace {

// Tags on the duplicate communicator. Unasked messages (questions, endings) arrive on
// kNotice as int64 {kind, a, b}; answers on kAnswer, each received by the asker from its
// peer only, so the standing receive for notices never takes one.
constexpr int kNotice = 1, kAnswer = 2;
constexpr int64_t kQuery = 1;   // {kQuery, call asked about (0: point-to-point), 0}
constexpr int64_t kEnding = 2;  // {kEnding, Ending, calls the sender had issued in the group}
constexpr size_t kRecent = 64;  // names remembered of the latest calls
constexpr int kNameBytes = 24;
// Answer: {calls issued, then the name of the call asked about, NUL-padded}.
using Answer = std::array<int64_t, 1 + kNameBytes / 8>;
// Looks at the clock this far apart (the watchdog's are 100 ms) mean the process was not
// running in between.
constexpr auto kStallGap = std::chrono::seconds(1);

// For announce_job_ending(): every RollCall of this process, and the duplicate
// communicators of those destroyed by an exception (kept, never freed: see ~RollCall).
struct Orphan {
  MPI_Comm diag;
  int size, rank;
  int64_t issued;
};
std::timed_mutex g_live_mu;
std::vector<RollCall*> g_live;
std::vector<Orphan> g_orphans;
std::atomic<bool> g_reported_timeout{false};
// Announcements' sends (never freed: they may still be read while fatal() aborts the job).
std::mutex g_ending_mu;
std::deque<std::array<int64_t, 3>> g_ending_bufs;
std::vector<MPI_Request> g_ending_reqs;

// Tells members 0..size-1 but `rank` of `diag`'s group that this rank is ending the job.
void post_endings(MPI_Comm diag, int size, int rank, Ending kind, int64_t issued) {
  std::lock_guard<std::mutex> lock(g_ending_mu);
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    g_ending_bufs.push_back({kEnding, static_cast<int64_t>(kind), issued});
    MPI_Request req;
    if (MPI_Isend(g_ending_bufs.back().data(), static_cast<int>(sizeof(g_ending_bufs.back())), MPI_BYTE, r, kNotice,
                  diag, &req) == MPI_SUCCESS) {
      g_ending_reqs.push_back(req);
    }
  }
}

// Waits at most 100 ms for the announcements to leave.
void flush_announcements() {
  std::lock_guard<std::mutex> lock(g_ending_mu);
  const auto deadline = RollCall::Clock::now() + std::chrono::milliseconds(100);
  while (!g_ending_reqs.empty() && RollCall::Clock::now() < deadline) {
    int all = 0;
    if (MPI_Testall(static_cast<int>(g_ending_reqs.size()), g_ending_reqs.data(), &all, MPI_STATUSES_IGNORE) !=
            MPI_SUCCESS ||
        all) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool mpi_running() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

}  // namespace

struct RollCall::Outgoing {
  MPI_Request req = MPI_REQUEST_NULL;
  Answer buf{};
};

RollCall::RollCall(MPI_Comm comm, std::string describe, std::vector<int> world_ranks, int rank,
                   std::chrono::milliseconds timeout)
    : describe_(std::move(describe)),
      world_ranks_(std::move(world_ranks)),
      rank_(rank),
      timeout_(timeout),
      recent_(kRecent, nullptr),
      gave_up_at_(world_ranks_.size(), -1),
      gave_up_while_stopped_(world_ranks_.size(), false),
      ended_(world_ranks_.size(), Ending::kNo),
      ended_reached_(world_ranks_.size(), 0),
      last_look_(Clock::now()) {
  TN_MPI_CHECK(MPI_Comm_dup(comm, &diag_), describe_);
  MPI_Comm_set_errhandler(diag_, MPI_ERRORS_RETURN);  // failures here are ignored, never fatal
  post_inbox_locked();
  std::lock_guard<std::timed_mutex> live(g_live_mu);
  g_live.push_back(this);
}

RollCall::~RollCall() {
  // Destroyed by an exception, most likely on its way to run_ranked's fatal(): the
  // duplicate stays, so that fatal() can still tell this group's members. Nothing is sent
  // now (the exception may yet be handled and the job go on; a message on a freed
  // communicator could reach a later one that reuses its context id), so if the job does
  // go on, one communicator is leaked.
  const bool orphan = std::uncaught_exceptions() > 0 && mpi_running();
  {
    std::lock_guard<std::timed_mutex> live(g_live_mu);
    g_live.erase(std::remove(g_live.begin(), g_live.end(), this), g_live.end());
    if (orphan) {
      std::lock_guard<std::mutex> calls(calls_mu_);
      g_orphans.push_back(Orphan{diag_, static_cast<int>(world_ranks_.size()), rank_, issued_});
    }
  }
  if (!mpi_running()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (inbox_req_ != MPI_REQUEST_NULL) {
    MPI_Cancel(&inbox_req_);
    MPI_Wait(&inbox_req_, MPI_STATUS_IGNORE);
  }
  for (auto& out : outgoing_) {
    int done = 0;
    MPI_Test(&out->req, &done, MPI_STATUS_IGNORE);
    if (!done) {  // an answer to a rank that stopped listening: let MPI finish it, keep its buffer
      MPI_Request_free(&out->req);
      (void)out.release();
    }
  }
  if (!orphan) MPI_Comm_free(&diag_);
}

int64_t RollCall::enter(const char* name) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  ++issued_;
  recent_[static_cast<size_t>(issued_) % kRecent] = name;
  return issued_;
}

std::chrono::milliseconds RollCall::answer_wait() const {
  return std::clamp<std::chrono::milliseconds>(timeout_ / 5, std::chrono::seconds(1), std::chrono::seconds(5));
}

std::chrono::nanoseconds RollCall::stalled(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(stall_mu_);
  if (now > last_look_) {
    const auto gap = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_look_);
    last_look_ = now;
    if (gap > kStallGap) {
      stalled_ += gap;
      last_stall_ = gap;
      last_stall_end_ = now;
      stall_unserved_.store(true);
    }
  }
  return stalled_;
}

void RollCall::tick(Clock::time_point now) {
  stalled(now);
  if (!mpi_running()) return;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (lock.owns_lock() && !stopped_) serve_locked();  // otherwise a roll call is under way and serves
}

void RollCall::post_inbox_locked() {
  if (MPI_Irecv(inbox_, static_cast<int>(sizeof(inbox_)), MPI_BYTE, MPI_ANY_SOURCE, kNotice, diag_, &inbox_req_) !=
      MPI_SUCCESS) {
    inbox_req_ = MPI_REQUEST_NULL;
  }
}

void RollCall::send_locked(int peer, int tag, const void* data, int bytes) {
  auto out = std::make_unique<Outgoing>();
  std::memcpy(out->buf.data(), data, static_cast<size_t>(bytes));
  if (MPI_Isend(out->buf.data(), bytes, MPI_BYTE, peer, tag, diag_, &out->req) == MPI_SUCCESS) {
    outgoing_.push_back(std::move(out));
  }
}

void RollCall::serve_locked() {
  // Questions already waiting when a stall ends were asked while this process was stopped.
  const bool after_stall = stall_unserved_.exchange(false);
  while (inbox_req_ != MPI_REQUEST_NULL) {
    int got = 0;
    MPI_Status st;
    if (MPI_Test(&inbox_req_, &got, &st) != MPI_SUCCESS || !got) break;
    const int q = st.MPI_SOURCE;
    const int64_t kind = inbox_[0], a = inbox_[1], b = inbox_[2];
    post_inbox_locked();
    if (q < 0 || q >= static_cast<int>(world_ranks_.size())) continue;
    const size_t qi = static_cast<size_t>(q);
    if (kind == kQuery) {
      Answer ans{};
      {
        std::lock_guard<std::mutex> calls(calls_mu_);
        ans[0] = issued_;
        const char* name = a > 0 && a <= issued_ && issued_ - a < static_cast<int64_t>(kRecent)
                               ? recent_[static_cast<size_t>(a) % kRecent]
                               : nullptr;
        if (name) std::strncpy(reinterpret_cast<char*>(&ans[1]), name, kNameBytes - 1);
      }
      send_locked(q, kAnswer, ans.data(), static_cast<int>(sizeof(ans)));
      // It timed out waiting: for this rank, if this rank had not issued that call yet or
      // was not running.
      if (a > 0 && ans[0] < a) gave_up_at_[qi] = a;
      if (after_stall) gave_up_while_stopped_[qi] = true;
    } else if (kind == kEnding) {
      ended_[qi] = static_cast<Ending>(a);
      ended_reached_[qi] = b;
    }
  }
  for (auto it = outgoing_.begin(); it != outgoing_.end();) {
    int done = 0;
    MPI_Test(&(*it)->req, &done, MPI_STATUS_IGNORE);
    it = done ? outgoing_.erase(it) : it + 1;
  }
}

void RollCall::ask(const std::vector<int>& peers, int64_t call, TimeoutFacts& f) {
  const size_t n = peers.size();
  std::vector<Answer> answers(n);
  std::vector<MPI_Request> reqs(n, MPI_REQUEST_NULL);
  std::vector<bool> heard(n, false);
  for (size_t i = 0; i < n; ++i) {
    MPI_Irecv(answers[i].data(), static_cast<int>(sizeof(Answer)), MPI_BYTE, peers[i], kAnswer, diag_, &reqs[i]);
    f.peers[static_cast<size_t>(peers[i])].asked = true;
  }
  const int64_t query[3] = {kQuery, call, 0};
  for (int p : peers) send_locked(p, kNotice, query, static_cast<int>(sizeof(query)));
  const auto deadline = Clock::now() + answer_wait();
  for (size_t left = n; left > 0 && Clock::now() < deadline;) {
    bool only_ended_left = true;
    for (size_t i = 0; i < n; ++i) {
      if (heard[i]) continue;
      int got = 0;
      if (reqs[i] != MPI_REQUEST_NULL && MPI_Test(&reqs[i], &got, MPI_STATUS_IGNORE) == MPI_SUCCESS && got) {
        heard[i] = true;
        --left;
      } else if (ended_[static_cast<size_t>(peers[i])] == Ending::kNo) {
        only_ended_left = false;
      }
    }
    serve_locked();  // the peers asking this rank at the same time get their answers
    if (left == 0 || only_ended_left) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (size_t i = 0; i < n; ++i) {
    TimeoutFacts::Peer& p = f.peers[static_cast<size_t>(peers[i])];
    if (heard[i]) {
      p.answered = true;
      p.reached = answers[i][0];
      char name[kNameBytes] = {};
      std::memcpy(name, &answers[i][1], kNameBytes - 1);
      p.call_name = name;
    } else if (reqs[i] != MPI_REQUEST_NULL) {
      MPI_Cancel(&reqs[i]);
      MPI_Wait(&reqs[i], MPI_STATUS_IGNORE);
    }
  }
}

std::string RollCall::collective_timeout(const char* name, int64_t call) {
  return timeout_report(name, call, {});
}

std::string RollCall::p2p_timeout(const char* name, const std::vector<P2PPart>& parts) {
  return timeout_report(name, 0, parts);
}

std::string RollCall::timeout_report(const char* name, int64_t call, const std::vector<P2PPart>& parts) {
  g_reported_timeout.store(true);
  TimeoutFacts f;
  f.op = name;
  f.group = describe_;
  f.timeout = timeout_;
  f.answer_wait = answer_wait();
  f.call = call;
  f.world_ranks = world_ranks_;
  f.self = rank_;
  f.peers.resize(world_ranks_.size());
  f.parts = parts;
  std::vector<int> peers;
  if (call > 0) {
    for (int r = 0; r < static_cast<int>(world_ranks_.size()); ++r)
      if (r != rank_) peers.push_back(r);
  } else {
    for (const P2PPart& p : parts)
      if (std::find(peers.begin(), peers.end(), p.peer) == peers.end()) peers.push_back(p.peer);
  }
  if (!mpi_running()) return describe_timeout(f);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return describe_timeout(f);
  serve_locked();
  const auto known = [&] {
    bool stop = false;
    for (size_t q = 0; q < f.peers.size(); ++q) {
      TimeoutFacts::Peer& p = f.peers[q];
      p.ended = ended_[q];
      if (p.ended != Ending::kNo && !p.answered) p.reached = ended_reached_[q];
      // At this very call (not at one this rank never reached because it is stuck here).
      p.gave_up_on_us = gave_up_while_stopped_[q] || (call > 0 && gave_up_at_[q] == call);
      stop = stop || p.ended == Ending::kError || p.gave_up_on_us;
    }
    return stop;  // the message is decided without asking anyone
  };
  if (!known()) {
    ask(peers, call, f);
    known();
  }
  {  // the latest pause, if recent enough to have had a part in this wait
    std::lock_guard<std::mutex> stall(stall_mu_);
    if (last_stall_.count() > 0 && last_stall_end_ + 2 * timeout_ > Clock::now()) {
      f.stalled = std::chrono::duration_cast<std::chrono::milliseconds>(last_stall_);
    }
  }
  return describe_timeout(f);
}

void RollCall::announce(Ending kind) {
  int64_t issued = 0;
  {
    std::lock_guard<std::mutex> calls(calls_mu_);
    issued = issued_;
  }
  post_endings(diag_, static_cast<int>(world_ranks_.size()), rank_, kind, issued);
}

void RollCall::stop_all() {
  std::lock_guard<std::timed_mutex> live(g_live_mu);
  for (RollCall* rc : g_live) {
    std::lock_guard<std::mutex> lock(rc->mu_);
    rc->stopped_ = true;
  }
}

void RollCall::announce_job_ending() {
  if (!mpi_running()) return;
  {
    std::unique_lock<std::timed_mutex> live(g_live_mu, std::defer_lock);
    if (!live.try_lock_for(std::chrono::milliseconds(100))) return;
    const Ending kind = g_reported_timeout.load() ? Ending::kTimeout : Ending::kError;
    for (RollCall* rc : g_live) rc->announce(kind);
    for (const Orphan& o : g_orphans) post_endings(o.diag, o.size, o.rank, Ending::kError, o.issued);
  }
  flush_announcements();
}

}  // namespace ternion::parallel

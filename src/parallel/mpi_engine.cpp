// MpiEngine: the ordered operation queue, the inline fast path, request polling and the
// watchdog. See mpi_engine.h.
#include "parallel/mpi_engine.h"

#include <algorithm>

#include "core/error.h"
#include "parallel/mpi_communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel {

MpiEngine::MpiEngine(MPI_Comm comm, std::string describe, std::vector<int> world_ranks,
                     std::chrono::milliseconds timeout)
    : comm_(comm), describe_(std::move(describe)), timeout_(timeout) {
  int rank = 0;
  TN_MPI_CHECK(MPI_Comm_rank(comm_, &rank), describe_);
  roll_ = std::make_shared<RollCall>(comm_, describe_, std::move(world_ranks), rank, timeout_);
  thread_ = std::thread([this] { loop(); });
  dog_ = std::thread([this] { watchdog(); });
}

MpiEngine::~MpiEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  dog_cv_.notify_all();
  thread_.join();
  dog_.join();
  roll_.reset();  // frees its duplicate of comm_
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

std::shared_ptr<OpState> MpiEngine::submit(const char* name, OpKind kind, OpFn fn) {
  return enqueue(name, kind == OpKind::kCollective ? roll_->enter(name) : 0, std::move(fn));
}

std::shared_ptr<OpState> MpiEngine::enqueue(const char* name, int64_t call, OpFn fn) {
  auto state = std::make_shared<OpState>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Op{name, call, std::move(fn), state});
  }
  work_cv_.notify_one();
  return state;
}

void MpiEngine::run_blocking(const char* name, OpFn fn) {
  const int64_t call = roll_->enter(name);  // numbered at issue, in program order
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!queue_.empty() || running_) {
      lock.unlock();
      wait(*enqueue(name, call, std::move(fn)));
      return;
    }
    begin_locked(name, call);
  }
  Requests reqs;
  try {
    fn(reqs);
  } catch (...) {
    end();
    throw;
  }
  end();
}

void MpiEngine::wait(const OpState& s) {
  if (s.done.load(std::memory_order_acquire)) return;
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return s.done.load(std::memory_order_acquire); });
}

void MpiEngine::begin_locked(const char* name, int64_t call) {
  running_ = true;
  busy_name_ = name;
  busy_call_ = call;
  const auto now = Clock::now();
  busy_deadline_ = now + timeout_;
  busy_stalled_at_ = roll_->stalled(now);
}

void MpiEngine::end() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    busy_name_ = nullptr;
  }
  work_cv_.notify_one();
}

void MpiEngine::complete(OpState& s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.done.store(true, std::memory_order_release);
  }
  done_cv_.notify_all();
}

// Names the parts still incomplete (MPI_Request_get_status leaves the requests as they are).
void MpiEngine::p2p_timed_out(const Pending& p) {
  std::vector<P2PPart> open;
  for (size_t i = 0; i < p.reqs.list.size(); ++i) {
    int done = 0;
    MPI_Request r = p.reqs.list[i];
    if (r != MPI_REQUEST_NULL) MPI_Request_get_status(r, &done, MPI_STATUS_IGNORE);
    if (!done && i < p.reqs.parts.size()) open.push_back(p.reqs.parts[i]);
  }
  fatal(roll_->p2p_timeout(p.name, open));
}

void MpiEngine::loop() {
  int idle_polls = 0;
  for (;;) {
    Op op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return stop_ || (!queue_.empty() && !running_); };
      if (pending_.empty()) {
        work_cv_.wait(lock, ready);
      } else if (idle_polls > 200) {  // spin briefly on fresh requests, then back off
        work_cv_.wait_for(lock, std::chrono::microseconds(200), ready);
      }
      if (!queue_.empty() && !running_) {
        op = std::move(queue_.front());
        queue_.pop_front();
        begin_locked(op.name, op.call);
      } else if (stop_ && queue_.empty() && pending_.empty() && !running_) {
        return;
      }
    }
    if (op.fn) {
      Requests reqs;
      try {
        op.fn(reqs);
      } catch (const std::exception& e) {
        fatal(str_cat(op.name, " failed in ", describe_, ": ", e.what()));
      }
      end();
      if (reqs.list.empty()) {
        complete(*op.state);
      } else {
        const auto now = Clock::now();
        pending_.push_back(Pending{std::move(reqs), op.state, op.name, now + timeout_, roll_->stalled(now)});
      }
      idle_polls = 0;
    }
    poll_pending(idle_polls);
  }
}

void MpiEngine::poll_pending(int& idle_polls) {
  if (pending_.empty()) return;
  const auto now = Clock::now();
  std::vector<MPI_Status> statuses;
  for (auto it = pending_.begin(); it != pending_.end();) {
    int flag = 0;
    statuses.assign(it->reqs.list.size(), MPI_Status{});
    const int rc = MPI_Testall(static_cast<int>(it->reqs.list.size()), it->reqs.list.data(), &flag,
                               statuses.data());
    if (rc == MPI_ERR_IN_STATUS) {  // name the first request that failed
      for (const MPI_Status& st : statuses) {
        if (st.MPI_ERROR != MPI_SUCCESS && st.MPI_ERROR != MPI_ERR_PENDING) {
          fatal(str_cat(it->name, " failed in ", describe_, ": ", mpi_error_string(st.MPI_ERROR),
                        " (sends and receives between two ranks must be issued in the same order "
                        "with the same sizes)"));
        }
      }
    }
    TN_MPI_CHECK(rc, describe_);
    if (flag) {
      if (it->reqs.on_complete) it->reqs.on_complete(statuses);
      complete(*it->state);
      it = pending_.erase(it);
      idle_polls = 0;
    } else {
      if (now > it->deadline + (roll_->stalled(now) - it->stalled_at)) p2p_timed_out(*it);
      ++it;
    }
  }
  ++idle_polls;
  if (idle_polls <= 200) std::this_thread::yield();
}

void MpiEngine::watchdog() {
  const auto period = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(100), timeout_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    dog_cv_.wait_for(lock, period);
    const auto now = Clock::now();  // one reading for the stall clock and the deadline
    lock.unlock();
    roll_->tick(now);  // answers peers first: after a stall, their questions tell who gave up on us
    lock.lock();
    if (busy_name_ && now > busy_deadline_ + (roll_->stalled(now) - busy_stalled_at_)) {
      const char* name = busy_name_;
      const int64_t call = busy_call_;
      lock.unlock();
      fatal(roll_->collective_timeout(name, call));
    }
  }
}

namespace {

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<MpiEngine> engine, std::shared_ptr<OpState> state)
      : engine_(std::move(engine)), state_(std::move(state)) {}
  ~MpiWork() override { wait(); }
  void wait() override {
    if (state_) engine_->wait(*state_);
  }
  bool test() override { return !state_ || state_->done.load(std::memory_order_acquire); }

 private:
  std::shared_ptr<MpiEngine> engine_;
  std::shared_ptr<OpState> state_;
};

}  // namespace

std::unique_ptr<Work> make_mpi_work(std::shared_ptr<MpiEngine> engine, std::shared_ptr<OpState> state) {
  return std::make_unique<MpiWork>(std::move(engine), std::move(state));
}

}  // namespace ternion::parallel

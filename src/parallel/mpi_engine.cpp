// MpiEngine: the ordered operation queue, the inline fast path, request polling and the
// watchdog. See mpi_engine.h.
#include "parallel/mpi_engine.h"

#include <algorithm>

#include "core/error.h"
#include "parallel/mpi_communicator.h"
#include "parallel/runtime.h"

namespace ternion::parallel {

MpiEngine::MpiEngine(MPI_Comm comm, std::string describe, std::chrono::milliseconds timeout)
    : comm_(comm), describe_(std::move(describe)), timeout_(timeout) {
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
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

std::shared_ptr<OpState> MpiEngine::submit(const char* name, OpFn fn) {
  auto state = std::make_shared<OpState>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Op{name, std::move(fn), state});
  }
  work_cv_.notify_one();
  return state;
}

void MpiEngine::run_blocking(const char* name, OpFn fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!queue_.empty() || running_) {
      lock.unlock();
      wait(*submit(name, std::move(fn)));
      return;
    }
    begin_locked(name);
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

void MpiEngine::begin_locked(const char* name) {
  running_ = true;
  busy_name_ = name;
  busy_deadline_ = Clock::now() + timeout_;
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

std::string MpiEngine::timeout_message(const char* name) const {
  return str_cat(name, " timed out after ", static_cast<double>(timeout_.count()) / 1000.0, "s in ",
                 describe_, "; a peer died or never arrived");
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
        begin_locked(op.name);
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
        pending_.push_back(Pending{std::move(reqs), op.state, op.name, Clock::now() + timeout_});
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
      if (now > it->deadline) fatal(timeout_message(it->name));
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
    if (busy_name_ && Clock::now() > busy_deadline_) {
      std::string msg = timeout_message(busy_name_);
      lock.unlock();
      fatal(msg);
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

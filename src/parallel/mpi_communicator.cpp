// MPI backend: an ordered operation engine (communication thread, inline fast path,
// watchdog) and the collectives written against it. See mpi_communicator.h.
#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>

#include "parallel/comm_checks.h"
#include "parallel/nccl_communicator.h"

namespace ternion::parallel {

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return str_cat("MPI error ", code);
  return std::string(buf, static_cast<size_t>(len));
}

namespace {

int64_t g_max_count = INT_MAX;
using Clock = std::chrono::steady_clock;
using Requests = std::vector<MPI_Request>;
using OpFn = std::function<void(Requests&)>;  // issues MPI calls; may leave requests to poll

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::bf16:
    case DType::f16:
    case DType::u16: return MPI_UINT16_T;  // moved as bits; reduced in f32 (see below)
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
  }
  return MPI_BYTE;
}

bool is_half(DType d) { return d == DType::bf16 || d == DType::f16; }
MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM; }
char* bytes(const Tensor& t) { return t.numel() ? static_cast<char*>(t.raw_data()) : nullptr; }

// kAvg after a sum: divide by the group size (integers truncate). Never sees bf16/f16,
// which are averaged in their f32 staging buffer.
void divide(Tensor& t, int n) {
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_arithmetic_v<T>) {
      T* p = t.data<T>();
      for (int64_t i = 0, e = t.numel(); i < e; ++i) p[i] = static_cast<T>(p[i] / static_cast<T>(n));
    }
  });
}

struct OpState {
  std::atomic<bool> done{false};
};

struct Op {
  const char* name = nullptr;
  OpFn fn;
  std::shared_ptr<OpState> state;
};

// Runs a group's MPI operations one at a time in issue order, on its own thread or,
// when idle, on the caller's; enforces the timeout on each.
class Engine {
 public:
  Engine(MPI_Comm comm, std::string describe, std::chrono::milliseconds timeout)
      : comm_(comm), describe_(std::move(describe)), timeout_(timeout) {
    thread_ = std::thread([this] { loop(); });
    dog_ = std::thread([this] { watchdog(); });
  }
  ~Engine() {
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
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  MPI_Comm comm() const { return comm_; }
  const std::string& describe() const { return describe_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  std::shared_ptr<OpState> submit(const char* name, OpFn fn) {
    auto state = std::make_shared<OpState>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(Op{name, std::move(fn), state});
    }
    work_cv_.notify_one();
    return state;
  }

  // A collective (fn leaves no requests) run to completion: inline when idle.
  void run_blocking(const char* name, OpFn fn) {
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

  void wait(const OpState& s) {
    if (s.done.load(std::memory_order_acquire)) return;
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return s.done.load(std::memory_order_acquire); });
  }

 private:
  struct Pending {
    Requests reqs;
    std::shared_ptr<OpState> state;
    const char* name;
    Clock::time_point deadline;
  };

  void begin_locked(const char* name) {
    running_ = true;
    busy_name_ = name;
    busy_deadline_ = Clock::now() + timeout_;
  }
  void end() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = false;
      busy_name_ = nullptr;
    }
    work_cv_.notify_one();
  }
  void complete(OpState& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      s.done.store(true, std::memory_order_release);
    }
    done_cv_.notify_all();
  }
  std::string timeout_message(const char* name) const {
    return str_cat(name, " timed out after ", static_cast<double>(timeout_.count()) / 1000.0, "s in ",
                   describe_, "; a peer died or never arrived");
  }

  void loop() {
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
        if (reqs.empty()) {
          complete(*op.state);
        } else {
          pending_.push_back(Pending{std::move(reqs), op.state, op.name, Clock::now() + timeout_});
        }
        idle_polls = 0;
      }
      poll_pending(idle_polls);
    }
  }

  void poll_pending(int& idle_polls) {
    if (pending_.empty()) return;
    const auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      int flag = 0;
      TN_MPI_CHECK(MPI_Testall(static_cast<int>(it->reqs.size()), it->reqs.data(), &flag,
                               MPI_STATUSES_IGNORE),
                   describe_);
      if (flag) {
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

  void watchdog() {
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

  MPI_Comm comm_;
  const std::string describe_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, dog_cv_;
  std::deque<Op> queue_;
  bool running_ = false;  // an operation is executing (here or inline)
  bool stop_ = false;
  const char* busy_name_ = nullptr;
  Clock::time_point busy_deadline_;
  std::vector<Pending> pending_;  // communication thread only
  std::thread thread_, dog_;
};

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<Engine> engine, std::shared_ptr<OpState> state)
      : engine_(std::move(engine)), state_(std::move(state)) {}
  ~MpiWork() override { wait(); }
  void wait() override {
    if (state_) engine_->wait(*state_);
  }
  bool test() override { return !state_ || state_->done.load(std::memory_order_acquire); }

 private:
  std::shared_ptr<Engine> engine_;
  std::shared_ptr<OpState> state_;  // null: nothing to do (empty tensors)
};

// ---- the operations, as functions the engine runs ----

void allreduce_chunks(const Engine& e, const Tensor& t, ReduceOp op) {
  const int64_t n = t.numel();
  const size_t es = dtype_size(t.dtype());
  for (int64_t off = 0; off < n; off += g_max_count) {
    const int k = static_cast<int>(std::min(g_max_count, n - off));
    TN_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, bytes(t) + off * es, k, mpi_type(t.dtype()), mpi_op(op),
                               e.comm()),
                 e.describe());
  }
}

void bcast_chunks(const Engine& e, char* p, int64_t n, DType d, int root) {
  const size_t es = dtype_size(d);
  for (int64_t off = 0; off < n; off += g_max_count) {
    const int k = static_cast<int>(std::min(g_max_count, n - off));
    TN_MPI_CHECK(MPI_Bcast(p + off * es, k, mpi_type(d), root, e.comm()), e.describe());
  }
}

OpFn all_reduce_fn(const Engine& e, Tensor t, ReduceOp op, int size) {
  return [&e, t, op, size](Requests&) mutable {
    Tensor buf = is_half(t.dtype()) ? t.to(DType::f32) : t;
    allreduce_chunks(e, buf, op);
    if (op == ReduceOp::kAvg) divide(buf, size);
    if (buf.impl_ptr() != t.impl_ptr()) t.copy_(buf);
  };
}

OpFn reduce_scatter_fn(const Engine& e, Tensor in, Tensor out, ReduceOp op, int size) {
  return [&e, in, out, op, size](Requests&) mutable {
    const bool half = is_half(in.dtype());
    Tensor src = half ? in.to(DType::f32) : in;
    Tensor dst = half ? Tensor::empty(out.shape(), DType::f32) : out;
    const int64_t blk = dst.numel();
    const MPI_Datatype type = mpi_type(dst.dtype());
    if (blk <= g_max_count) {
      TN_MPI_CHECK(MPI_Reduce_scatter_block(bytes(src), bytes(dst), static_cast<int>(blk), type,
                                            mpi_op(op), e.comm()),
                   e.describe());
    } else {  // each block in chunks, reduced to its owner
      const size_t es = dtype_size(dst.dtype());
      for (int r = 0; r < size; ++r) {
        for (int64_t off = 0; off < blk; off += g_max_count) {
          const int k = static_cast<int>(std::min(g_max_count, blk - off));
          TN_MPI_CHECK(MPI_Reduce(bytes(src) + (r * blk + off) * es, bytes(dst) + off * es, k, type,
                                  mpi_op(op), r, e.comm()),
                       e.describe());
        }
      }
    }
    if (op == ReduceOp::kAvg) divide(dst, size);
    if (half) out.copy_(dst);
  };
}

// Uneven gather; equal counts are the all_gather of counts above the per-call limit.
OpFn all_gather_v_fn(const Engine& e, Tensor in, Tensor out, std::vector<int64_t> counts, int rank) {
  return [&e, in, out, counts = std::move(counts), rank](Requests&) {
    const MPI_Datatype type = mpi_type(in.dtype());
    const size_t es = dtype_size(in.dtype());
    std::vector<int64_t> displs(counts.size(), 0);
    for (size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
    const int64_t total = displs.back() + counts.back();
    if (total <= g_max_count) {
      std::vector<int> c(counts.begin(), counts.end()), d(displs.begin(), displs.end());
      TN_MPI_CHECK(MPI_Allgatherv(bytes(in), c[static_cast<size_t>(rank)], type, bytes(out), c.data(),
                                  d.data(), type, e.comm()),
                   e.describe());
      return;
    }
    // Above MPI's int counts: every rank broadcasts its part in chunks.
    if (in.numel()) std::memcpy(bytes(out) + displs[static_cast<size_t>(rank)] * es, bytes(in), in.nbytes());
    for (size_t r = 0; r < counts.size(); ++r) {
      bcast_chunks(e, bytes(out) + displs[r] * es, counts[r], in.dtype(), static_cast<int>(r));
    }
  };
}

OpFn all_gather_fn(const Engine& e, Tensor in, Tensor out, int size, int rank) {
  if (in.numel() > g_max_count) {
    return all_gather_v_fn(e, in, out, std::vector<int64_t>(static_cast<size_t>(size), in.numel()), rank);
  }
  return [&e, in, out](Requests&) {
    const MPI_Datatype type = mpi_type(in.dtype());
    TN_MPI_CHECK(MPI_Allgather(bytes(in), static_cast<int>(in.numel()), type, bytes(out),
                               static_cast<int>(in.numel()), type, e.comm()),
                 e.describe());
  };
}

OpFn p2p_fn(const Engine& e, Tensor t, int peer, int tag, bool is_send) {
  return [&e, t, peer, tag, is_send](Requests& reqs) {
    const int64_t n = t.numel();
    const size_t es = dtype_size(t.dtype());
    // Chunks of one (peer, tag) pair arrive in order (MPI's non-overtaking rule).
    for (int64_t off = 0; off < n; off += g_max_count) {
      const int k = static_cast<int>(std::min(g_max_count, n - off));
      MPI_Request r;
      if (is_send) {
        TN_MPI_CHECK(MPI_Isend(bytes(t) + off * es, k, mpi_type(t.dtype()), peer, tag, e.comm(), &r),
                     e.describe());
      } else {
        TN_MPI_CHECK(MPI_Irecv(bytes(t) + off * es, k, mpi_type(t.dtype()), peer, tag, e.comm(), &r),
                     e.describe());
      }
      reqs.push_back(r);
    }
  };
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name, std::vector<int> world_ranks, int rank,
                  const CommOptions& options)
      : Communicator(std::move(name), std::move(world_ranks), rank), options_(options) {
    engine_ = std::make_shared<Engine>(comm, describe(), options.timeout);
  }
  ~MpiCommunicator() override {
    nccl_.reset();  // before the MPI communicator it was bootstrapped over
  }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_tensor(*this, "all_reduce", t);
    if (t.device().is_cuda()) return nccl(t)->all_reduce(t, op)->wait();
    if (t.numel()) engine_->run_blocking("all_reduce", all_reduce_fn(*engine_, t, op, size()));
  }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) override {
    check_tensor(*this, "all_reduce", t);
    if (t.device().is_cuda()) return nccl(t)->all_reduce(t, op);
    if (!t.numel()) return done();
    return start("all_reduce", all_reduce_fn(*engine_, t, op, size()));
  }

  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check_reduce_scatter(*this, in, out);
    if (in.device().is_cuda()) return nccl(in)->reduce_scatter(in, out, op)->wait();
    if (out.numel()) engine_->run_blocking("reduce_scatter", reduce_scatter_fn(*engine_, in, out, op, size()));
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op) override {
    check_reduce_scatter(*this, in, out);
    if (in.device().is_cuda()) return nccl(in)->reduce_scatter(in, out, op);
    if (!out.numel()) return done();
    return start("reduce_scatter", reduce_scatter_fn(*engine_, in, out, op, size()));
  }

  void all_gather(const Tensor& in, Tensor& out) override {
    check_all_gather(*this, in, out);
    if (in.device().is_cuda()) return nccl(in)->all_gather(in, out)->wait();
    if (in.numel()) engine_->run_blocking("all_gather", all_gather_fn(*engine_, in, out, size(), rank()));
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out) override {
    check_all_gather(*this, in, out);
    if (in.device().is_cuda()) return nccl(in)->all_gather(in, out);
    if (!in.numel()) return done();
    return start("all_gather", all_gather_fn(*engine_, in, out, size(), rank()));
  }
  void all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) override {
    check_all_gather_v(*this, in, out, counts);
    if (in.device().is_cuda()) return nccl(in)->all_gather_v(in, out, counts)->wait();
    if (out.numel()) engine_->run_blocking("all_gather_v", all_gather_v_fn(*engine_, in, out, counts, rank()));
  }

  void broadcast(Tensor& t, int root) override {
    check_tensor(*this, "broadcast", t);
    check_group_rank(*this, "broadcast", root, false);
    if (t.device().is_cuda()) return nccl(t)->broadcast(t, root)->wait();
    if (!t.numel()) return;
    const Engine& e = *engine_;
    engine_->run_blocking("broadcast", [&e, t, root](Requests&) {
      bcast_chunks(e, bytes(t), t.numel(), t.dtype(), root);
    });
  }

  void send(const Tensor& t, int peer, int tag) override { send_async(t, peer, tag)->wait(); }
  void recv(Tensor& t, int peer, int tag) override { recv_async(t, peer, tag)->wait(); }
  std::unique_ptr<Work> send_async(const Tensor& t, int peer, int tag) override {
    check_tensor(*this, "send", t);
    check_group_rank(*this, "send", peer, true);
    if (t.device().is_cuda()) return nccl(t)->send(t, peer);
    return start("send", p2p_fn(*engine_, t, peer, tag, true));
  }
  std::unique_ptr<Work> recv_async(Tensor& t, int peer, int tag) override {
    check_tensor(*this, "recv", t);
    check_group_rank(*this, "recv", peer, true);
    if (t.device().is_cuda()) return nccl(t)->recv(t, peer);
    return start("recv", p2p_fn(*engine_, t, peer, tag, false));
  }

  void barrier() override {
    const Engine& e = *engine_;
    engine_->run_blocking("barrier", [&e](Requests&) { TN_MPI_CHECK(MPI_Barrier(e.comm()), e.describe()); });
  }

 private:
  std::unique_ptr<Work> start(const char* name, OpFn fn) {
    return std::make_unique<MpiWork>(engine_, engine_->submit(name, std::move(fn)));
  }
  std::unique_ptr<Work> done() { return std::make_unique<MpiWork>(engine_, nullptr); }

  // The group's NCCL communicator, created by the first CUDA-tensor call (collective).
  NcclCommunicator* nccl(const Tensor& t) {
    if (!nccl_) {
      check_nccl_available(describe());
      const int device = t.device().index;
      engine_->run_blocking("nccl_init", [this, device](Requests&) {
        nccl_ = make_nccl_communicator(engine_->comm(), describe(), rank(), size(), device, options_);
      });
    }
    return nccl_.get();
  }

  CommOptions options_;
  std::shared_ptr<Engine> engine_;
  std::unique_ptr<NcclCommunicator> nccl_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, std::string name,
                                                    std::vector<int> world_ranks,
                                                    const CommOptions& options) {
  int rank = 0;
  TN_MPI_CHECK(MPI_Comm_rank(comm, &rank), name);
  return std::make_unique<MpiCommunicator>(comm, std::move(name), std::move(world_ranks), rank, options);
}

void set_mpi_max_count_for_testing(int64_t n) { g_max_count = n; }

}  // namespace ternion::parallel

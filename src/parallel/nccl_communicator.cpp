// NCCL backend (CUDA builds only; nccl_stub.cpp otherwise). One NCCL communicator per
// group, on its own non-blocking CUDA stream. Each operation waits on an event recorded on
// the compute stream (the legacy default stream, which the core's kernels and copies use)
// and records a completion event. A Work's wait() makes the compute stream wait on that
// event (cudaStreamWaitEvent), then polls it (cudaEventQuery) together with
// ncclCommGetAsyncError until the group's timeout; expiry (its message from the group's
// RollCall, which numbers the collectives here as they are issued) or an asynchronous NCCL
// error aborts the NCCL communicator (ncclCommAbort) and ends the job through fatal().
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "parallel/comm_checks.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"

namespace ternion::parallel {
namespace {

using Clock = std::chrono::steady_clock;

#define TN_CUDA_OK(call, where)                                                            \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess)                                                                 \
      fatal(str_cat(#call, " failed in ", (where), ": ", cudaGetErrorString(e_), " at ",    \
                    __FILE__, ":", __LINE__));                                             \
  } while (0)

// What every operation and every Work of one group shares.
struct NcclGroup {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0;
  std::string describe;
  std::chrono::milliseconds timeout{0};
  std::shared_ptr<RollCall> roll;  // shared with the group's MPI engine
  std::atomic<bool> aborted{false};

  // Aborts the NCCL communicator (so no kernel of ours waits for a dead peer) and ends the job.
  [[noreturn]] void die(const std::string& message) {
    if (comm && !aborted.exchange(true)) ncclCommAbort(comm);
    fatal(message);
  }
  void check(ncclResult_t r, const char* call, const char* file, int line) {
    if (r != ncclSuccess && r != ncclInProgress) {
      die(str_cat(call, " failed in ", describe, ": ", ncclGetErrorString(r), " (",
                  ncclGetLastError(comm), ") at ", file, ":", line));
    }
  }
  ~NcclGroup() {
    if (comm && !aborted.load()) ncclCommDestroy(comm);
    if (stream) cudaStreamDestroy(stream);
  }
};

#define TN_NCCL_OK(g, call) (g).check((call), #call, __FILE__, __LINE__)

// One issued operation. Its completion event is recorded on the group's stream at issue;
// wait() makes the compute stream wait for it on the device first, then polls it.
class NcclWork final : public Work {
 public:
  // call: the collective's number in the group's RollCall; 0 for an exchange of `parts`.
  NcclWork(std::shared_ptr<NcclGroup> g, const char* name, std::vector<Tensor> keep, int64_t call,
           std::vector<P2PPart> parts)
      : g_(std::move(g)),
        name_(name),
        keep_(std::move(keep)),
        call_(call),
        parts_(std::move(parts)),
        deadline_(Clock::now() + g_->timeout),
        stalled_at_(g_->roll->stalled(Clock::now())) {
    TN_CUDA_OK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), g_->describe);
    TN_CUDA_OK(cudaEventRecord(done_, g_->stream), g_->describe);
  }
  ~NcclWork() override {
    wait();
    cudaEventDestroy(done_);
  }
  // Does not order the compute stream while the operation runs (a poll must not make
  // later kernels wait); once it reports completion, it has.
  bool test() override {
    if (finished_) return true;
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaErrorNotReady) return false;
    TN_CUDA_OK(e, g_->describe);
    order_compute_stream();
    finished_ = true;
    keep_.clear();
    return true;
  }
  void wait() override {
    order_compute_stream();
    // The host learns of completion (or of a dead peer) by polling the event and NCCL's
    // asynchronous error, sleeping between polls: 5 us doubling to at most 100 us (or a
    // tenth of the timeout), so the deadline is checked promptly without spinning a core.
    const auto cap = std::min<std::chrono::microseconds>(
        std::chrono::microseconds(100), std::chrono::duration_cast<std::chrono::microseconds>(g_->timeout) / 10);
    std::chrono::microseconds pause(5);
    while (!test()) {
      ncclResult_t async = ncclSuccess;
      TN_NCCL_OK(*g_, ncclCommGetAsyncError(g_->comm, &async));
      if (async != ncclSuccess && async != ncclInProgress) {
        g_->die(str_cat(name_, " failed in ", g_->describe, ": ", ncclGetErrorString(async)));
      }
      // Time this process was not running (stopped, starved) is not held against the peers.
      const auto now = Clock::now();
      if (now > deadline_ + (g_->roll->stalled(now) - stalled_at_)) {
        g_->die(call_ > 0 ? g_->roll->collective_timeout(name_, call_) : g_->roll->p2p_timeout(name_, parts_));
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::max(cap, std::chrono::microseconds(1)));
    }
  }

 private:
  // Later work on the compute stream runs after the operation, by the device's ordering
  // (cudaStreamWaitEvent), whatever the host does meanwhile. Once per Work.
  void order_compute_stream() {
    if (ordered_) return;
    TN_CUDA_OK(cudaSetDevice(g_->device), g_->describe);
    TN_CUDA_OK(cudaStreamWaitEvent(cudaStreamLegacy, done_, 0), g_->describe);
    ordered_ = true;
  }

  std::shared_ptr<NcclGroup> g_;
  const char* name_;
  std::vector<Tensor> keep_;  // storage stays alive until the operation is done
  int64_t call_;
  std::vector<P2PPart> parts_;
  Clock::time_point deadline_;
  std::chrono::nanoseconds stalled_at_;
  cudaEvent_t done_ = nullptr;
  bool ordered_ = false;
  bool finished_ = false;
};

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::u16: return ncclFloat16;  // moved as bits only: reductions refuse u16
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;  // integers: sum then divide, truncating
    case ReduceOp::kMax: return ncclMax;
  }
  return ncclSum;
}

void check_reducible(const char* op, DType d, const std::string& describe) {
  TN_CHECK(d != DType::u16, op, "NCCL has no 16-bit integer reduction (u16 tensor in ", describe,
           "); reduce it as i32");
}

class NcclCommunicatorImpl final : public NcclCommunicator {
 public:
  explicit NcclCommunicatorImpl(std::shared_ptr<NcclGroup> g, int rank, int size)
      : g_(std::move(g)), rank_(rank), size_(size) {
    TN_CUDA_OK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), g_->describe);
  }
  ~NcclCommunicatorImpl() override { cudaEventDestroy(ready_); }

  std::unique_ptr<Work> all_reduce(Tensor& t, ReduceOp op) override {
    check_reducible("all_reduce", t.dtype(), g_->describe);
    begin();
    if (t.numel())
      TN_NCCL_OK(*g_, ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                                    nccl_type(t.dtype()), nccl_op(op), g_->comm, g_->stream));
    return end("all_reduce", {t});
  }
  std::unique_ptr<Work> reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) override {
    check_reducible("reduce_scatter", in.dtype(), g_->describe);
    begin();
    if (out.numel())
      TN_NCCL_OK(*g_, ncclReduceScatter(in.raw_data(), out.raw_data(), static_cast<size_t>(out.numel()),
                                        nccl_type(in.dtype()), nccl_op(op), g_->comm, g_->stream));
    return end("reduce_scatter", {in, out});
  }
  std::unique_ptr<Work> all_gather(const Tensor& in, Tensor& out) override {
    begin();
    if (in.numel())
      TN_NCCL_OK(*g_, ncclAllGather(in.raw_data(), out.raw_data(), static_cast<size_t>(in.numel()),
                                    nccl_type(in.dtype()), g_->comm, g_->stream));
    return end("all_gather", {in, out});
  }
  // One broadcast per contributor, fused into a single NCCL group call.
  std::unique_ptr<Work> all_gather_v(const Tensor& in, Tensor& out,
                                     const std::vector<int64_t>& counts) override {
    begin();
    const size_t es = dtype_size(in.dtype());
    char* base = static_cast<char*>(out.numel() ? out.raw_data() : nullptr);
    TN_NCCL_OK(*g_, ncclGroupStart());
    int64_t at = 0;
    for (int r = 0; r < size_; ++r) {
      const int64_t n = counts[static_cast<size_t>(r)];
      if (n) {
        const void* send = r == rank_ ? in.raw_data() : nullptr;
        TN_NCCL_OK(*g_, ncclBroadcast(send, base + at * es, static_cast<size_t>(n), nccl_type(in.dtype()),
                                      r, g_->comm, g_->stream));
      }
      at += n;
    }
    TN_NCCL_OK(*g_, ncclGroupEnd());
    return end("all_gather_v", {in, out});
  }
  std::unique_ptr<Work> broadcast(Tensor& t, int root) override {
    begin();
    if (t.numel())
      TN_NCCL_OK(*g_, ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                                    nccl_type(t.dtype()), root, g_->comm, g_->stream));
    return end("broadcast", {t});
  }
  // One NCCL group: every send and receive is posted before any of them must complete.
  std::unique_ptr<Work> exchange(const std::vector<P2POp>& ops) override {
    begin();
    std::vector<Tensor> keep;
    std::vector<P2PPart> parts;
    TN_NCCL_OK(*g_, ncclGroupStart());
    for (const P2POp& op : ops) {
      const Tensor& t = op.tensor;
      const size_t n = static_cast<size_t>(t.numel());
      if (op.kind == P2POp::Kind::kSend) {
        TN_NCCL_OK(*g_, ncclSend(t.raw_data(), n, nccl_type(t.dtype()), op.peer, g_->comm, g_->stream));
      } else {
        TN_NCCL_OK(*g_, ncclRecv(t.raw_data(), n, nccl_type(t.dtype()), op.peer, g_->comm, g_->stream));
      }
      keep.push_back(t);
      parts.push_back(P2PPart{op.peer, op.kind == P2POp::Kind::kRecv});
    }
    TN_NCCL_OK(*g_, ncclGroupEnd());
    return std::make_unique<NcclWork>(g_, p2p_name(ops), std::move(keep), 0, std::move(parts));
  }

 private:
  // The NCCL stream starts after everything already queued on the compute stream.
  void begin() {
    TN_CUDA_OK(cudaSetDevice(g_->device), g_->describe);
    TN_CUDA_OK(cudaEventRecord(ready_, cudaStreamLegacy), g_->describe);
    TN_CUDA_OK(cudaStreamWaitEvent(g_->stream, ready_, 0), g_->describe);
  }
  // A collective's Work, numbered in issue order with the group's host collectives.
  std::unique_ptr<Work> end(const char* name, std::vector<Tensor> keep) {
    return std::make_unique<NcclWork>(g_, name, std::move(keep), g_->roll->enter(name), std::vector<P2PPart>{});
  }

  std::shared_ptr<NcclGroup> g_;
  int rank_, size_;
  cudaEvent_t ready_ = nullptr;
};

}  // namespace

void check_nccl_available(const std::string& describe) {
  TN_CHECK(cuda_available(), "communicator", describe, " got a CUDA tensor but no GPU is visible");
}

std::unique_ptr<NcclCommunicator> make_nccl_communicator(MPI_Comm comm, const std::string& describe,
                                                         int rank, int size, int device,
                                                         const CommOptions& options,
                                                         std::shared_ptr<RollCall> roll) {
  auto g = std::make_shared<NcclGroup>();
  g->describe = describe;
  g->device = device;
  g->timeout = options.timeout;
  g->roll = std::move(roll);
  ncclUniqueId id;
  if (rank == 0) TN_NCCL_OK(*g, ncclGetUniqueId(&id));
  TN_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm), describe);
  TN_CUDA_OK(cudaSetDevice(device), describe);
  TN_CUDA_OK(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), describe);
  TN_NCCL_OK(*g, ncclCommInitRank(&g->comm, size, id, rank));
  return std::make_unique<NcclCommunicatorImpl>(std::move(g), rank, size);
}

std::string nccl_version_string() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return str_cat(v / 10000, ".", (v / 100) % 100, ".", v % 100);
}

}  // namespace ternion::parallel

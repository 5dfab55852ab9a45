// Communicator: the narrow collective interface every parallel feature uses. One
// Communicator per process group (dp, tp, pp, embedding, world). Two backends sit behind
// it: MPI for host tensors and NCCL for device tensors (a group's MPI communicator holds
// its NCCL one and dispatches on the tensor's device). A size-1 group is the identity (no
// MPI call).
//
// Every call is collective over the group (every member, same order), except the
// point-to-point ones (send, recv, exchange). Each public call checks its arguments and
// counts its traffic once, here, before the backend's do_* implementation runs.
// Tensors must be contiguous; in-place ops overwrite their argument. Every call is bounded
// by the group's timeout: a peer that died or never arrives produces a fatal error naming
// the collective, the group and its ranks, and the whole job exits non-zero (MPI_Abort /
// ncclCommAbort) instead of hanging. See fatal() in runtime.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::parallel {

enum class ReduceOp { kSum, kAvg, kMax };
const char* reduce_op_name(ReduceOp op);

// A started asynchronous operation. wait() blocks until it is complete (bounded by the
// group's timeout; fatal on expiry) and, for CUDA tensors, orders the compute stream after
// it; test() polls (true once complete, and forever after). Destroying an unfinished Work
// waits.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;
};

struct CommOptions {
  // Longest any one call may take before the job is aborted. Generous by default: the
  // first collective after start waits for the slowest rank to finish loading.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  // The device this rank's tensors live on. A CUDA device makes group creation also create
  // the group's NCCL communicator (collective over the group, so every member joins at
  // once); a group created for the CPU refuses CUDA tensors. ParallelContext::create passes
  // the context's device.
  Device device = Device::cpu();
};

// One send or receive of an exchange. peer is a group rank; tag a label in [0, kMaxTag].
struct P2POp {
  enum class Kind { kSend, kRecv };
  Kind kind;
  Tensor tensor;
  int peer;
  int tag = 0;
};

// Point-to-point matching, the same on every backend: between two ranks, in each
// direction, receives match sends in issue order (NCCL's rule; NCCL carries no tags). The
// tag is a label both sides must agree on: the MPI backend checks it (and the size) when a
// receive completes and ends the job naming both tags on a mismatch, so a program whose
// host run passes also matches on NCCL. Issue order: program order of the calls on this
// rank (within an exchange, the order of its ops).
inline constexpr int kMaxTag = 32767;  // the least MPI_TAG_UB the MPI standard allows

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return rank_; }   // this process's index within the group
  int size() const { return static_cast<int>(world_ranks_.size()); }
  const std::string& name() const { return name_; }            // "dp", "tp", "world", ...
  const std::vector<int>& world_ranks() const { return world_ranks_; }  // member i's world rank
  std::string describe() const;  // "group dp (world ranks 0,2,4,6)"

  // In place over the group. kAvg divides the sum by size() (integer dtypes: truncating).
  void all_reduce(Tensor& t, ReduceOp op);
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op);

  // out = this rank's block of the reduction of `in`: in.numel() == size() * out.numel(),
  // rank r receives elements [r*n, (r+1)*n) of the reduced flat tensor.
  void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op);
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op);
  // out = concatenation of every rank's `in` in rank order: out.numel() == size()*in.numel().
  void all_gather(const Tensor& in, Tensor& out);
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out);
  // Uneven: rank r contributes counts[r] elements (in.numel() == counts[rank()]); out holds
  // their concatenation (sum(counts) elements). counts is the same on every rank.
  void all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts);

  // root's t is copied into every other rank's t (same shape and dtype everywhere).
  void broadcast(Tensor& t, int root);

  // Point to point (not collective); peer is a group rank, matching as described above.
  // Both sides pass the same element count and dtype. On CUDA tensors separate calls run
  // one after another on the group's stream, each waiting for its peer, so calls that must
  // progress together (a ring, neighbours sending to each other) belong in one exchange().
  void send(const Tensor& t, int peer, int tag = 0);
  void recv(Tensor& t, int peer, int tag = 0);
  std::unique_ptr<Work> send_async(const Tensor& t, int peer, int tag = 0);
  std::unique_ptr<Work> recv_async(Tensor& t, int peer, int tag = 0);
  // Starts a group of sends and receives that progress together (NCCL group semantics:
  // ncclGroupStart/End; MPI: all Isend/Irecv posted before any wait), so a pipeline
  // steady state where neighbours send to each other at once cannot deadlock.
  std::unique_ptr<Work> exchange(const std::vector<P2POp>& ops);

  void barrier();

  // Bytes this rank has sent through this group since it was created, counted by the
  // nccl-tests convention whatever the backend's algorithm: all-reduce of S bytes over n
  // ranks: 2(n-1)/n·S; all-gather or reduce-scatter whose full buffer is S: (n-1)/n·S;
  // broadcast: S; a send: S; a receive: 0. A size-1 group counts nothing. Thread-safe.
  // (Fractions of a byte round down, per call.)
  int64_t bytes_sent() const;
  // Wall seconds this rank has spent inside the blocking collectives (all_reduce,
  // reduce_scatter, all_gather, all_gather_v, broadcast) of this group since it was created:
  // waiting for the peers and moving the data on host tensors; on CUDA tensors the time to
  // enqueue the call and order the compute stream after it. Asynchronous calls and
  // point-to-point are not counted. A size-1 group counts nothing. Thread-safe.
  double blocking_seconds() const;

  // Host conveniences built on the above (used by config hashing and checkpoint votes).
  std::vector<std::string> all_gather_strings(const std::string& s);
  bool all_true(bool b);
  double all_reduce_scalar(double v, ReduceOp op);

 protected:
  Communicator(std::string name, std::vector<int> world_ranks, int rank)
      : name_(std::move(name)), world_ranks_(std::move(world_ranks)), rank_(rank) {}

  // What a backend implements. The public calls above have checked the arguments, counted
  // the bytes and dropped empty tensors (every element count here is > 0; an exchange has
  // at least one op). With blocking = true the call completes before returning and may
  // return nullptr; otherwise it returns a started Work.
  virtual std::unique_ptr<Work> do_all_reduce(Tensor& t, ReduceOp op, bool blocking) = 0;
  virtual std::unique_ptr<Work> do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                                  bool blocking) = 0;
  virtual std::unique_ptr<Work> do_all_gather(const Tensor& in, Tensor& out, bool blocking) = 0;
  virtual void do_all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) = 0;
  virtual void do_broadcast(Tensor& t, int root) = 0;
  virtual std::unique_ptr<Work> do_exchange(const std::vector<P2POp>& ops) = 0;
  virtual void do_barrier() = 0;

 private:
  void count(int64_t bytes);
  class BlockingTimer;

  std::string name_;
  std::vector<int> world_ranks_;
  int rank_;
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> blocking_ns_{0};
};

// The identity group of one process (every collective returns its input; point-to-point
// calls throw: there is no peer).
std::unique_ptr<Communicator> make_self_communicator(std::string name, int world_rank);

}  // namespace ternion::parallel

// Communicator: the narrow collective interface every parallel feature uses. One
// Communicator per process group (dp, tp, pp, embedding, world). Two backends sit behind
// it: MPI for host tensors and NCCL for device tensors; a ProcessGroup holds both and
// dispatches on the tensor's device. A size-1 group is the identity (no MPI call).
//
// Every call is collective over the group (every member, same order), except send/recv.
// Tensors must be contiguous; in-place ops overwrite their argument. Every call is bounded
// by the group's timeout: a peer that died or never arrives produces a fatal error naming
// the collective, the group and its ranks, and the whole job exits non-zero (MPI_Abort /
// ncclCommAbort) instead of hanging. See fatal() in runtime.h.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::parallel {

enum class ReduceOp { kSum, kAvg, kMax };
const char* reduce_op_name(ReduceOp op);

// A started asynchronous operation. wait() blocks until it is complete (bounded by the
// group's timeout; fatal on expiry); test() polls. Destroying an unfinished Work waits.
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
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  int rank() const { return rank_; }   // this process's index within the group
  int size() const { return static_cast<int>(world_ranks_.size()); }
  const std::string& name() const { return name_; }            // "dp", "tp", "world", ...
  const std::vector<int>& world_ranks() const { return world_ranks_; }  // member i's world rank
  std::string describe() const;  // "group dp (world ranks 0,2,4,6)"

  // In place over the group. kAvg divides the sum by size() (integer dtypes: truncating).
  virtual void all_reduce(Tensor& t, ReduceOp op) = 0;
  virtual std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op) = 0;

  // out = this rank's block of the reduction of `in`: in.numel() == size() * out.numel(),
  // rank r receives elements [r*n, (r+1)*n) of the reduced flat tensor.
  virtual void reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) = 0;
  // out = concatenation of every rank's `in` in rank order: out.numel() == size()*in.numel().
  virtual void all_gather(const Tensor& in, Tensor& out) = 0;
  // Uneven: rank r contributes counts[r] elements (in.numel() == counts[rank()]); out holds
  // their concatenation (sum(counts) elements). counts is the same on every rank.
  virtual void all_gather_v(const Tensor& in, Tensor& out, const std::vector<int64_t>& counts) = 0;
  virtual std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op) = 0;
  virtual std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out) = 0;

  // root's t is copied into every other rank's t (same shape and dtype everywhere).
  virtual void broadcast(Tensor& t, int root) = 0;
  // Point to point; peer is a group rank. Matched by (peer, tag) in order.
  virtual void send(const Tensor& t, int peer, int tag = 0) = 0;
  virtual void recv(Tensor& t, int peer, int tag = 0) = 0;
  virtual std::unique_ptr<Work> send_async(const Tensor& t, int peer, int tag = 0) = 0;
  virtual std::unique_ptr<Work> recv_async(Tensor& t, int peer, int tag = 0) = 0;
  virtual void barrier() = 0;

  // Host conveniences built on the above (used by config hashing and checkpoint votes).
  std::vector<std::string> all_gather_strings(const std::string& s);
  bool all_true(bool b);
  double all_reduce_scalar(double v, ReduceOp op);

 protected:
  Communicator(std::string name, std::vector<int> world_ranks, int rank)
      : name_(std::move(name)), world_ranks_(std::move(world_ranks)), rank_(rank) {}

 private:
  std::string name_;
  std::vector<int> world_ranks_;
  int rank_;
};

// The identity group of one process (every collective returns its input; send/recv throw).
std::unique_ptr<Communicator> make_self_communicator(std::string name, int world_rank);

}  // namespace ternion::parallel

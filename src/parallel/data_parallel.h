// Data parallelism: averages parameter gradients over the dp group in buckets, each
// bucket's all-reduce started from the autograd engine's grad-ready hooks as soon as its
// last gradient is final, so communication overlaps the rest of backward (as PyTorch DDP
// and Megatron's distributed optimizer do).
//
// Buckets are filled in reverse registration order (backward produces the last layers'
// gradients first), up to bucket_mb MiB each; a parameter larger than a bucket gets one of
// its own. Every rank builds the same buckets from the same parameter list and launches
// them in bucket order, each as soon as it and every bucket before it are complete: the
// collectives then pair up across ranks even when the ranks' graphs differ (a branch one
// replica takes and another does not), at the price of a late bucket holding back the
// ones after it.
//
// With gradient accumulation, only the last micro-batch's backward communicates:
//   for micro in 0..n-1: reducer.begin_backward(micro == n-1); backward(loss / n);
//   reducer.finish();  // gradients now hold the dp-average of every rank's sum
#pragma once

#include <memory>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace ternion::parallel {

struct ReducerStats {
  int buckets = 0;
  int64_t bytes = 0;        // gradient bytes all-reduced per step
  double wait_ms = 0;       // time finish() blocked on communication (last step)
  int launched_early = 0;   // buckets whose all-reduce started during backward (last step)
};

class GradReducer {
 public:
  // params: leaves with requires_grad, f32, all on one device; the bucket buffers live on
  // that device, so CUDA gradients are reduced in device memory (the communicator sends
  // CUDA tensors through NCCL). Registers grad-ready hooks on them. The communicator must
  // outlive the reducer; a size-1 group makes the reducer a no-op.
  GradReducer(Communicator& dp, std::vector<Tensor> params, double bucket_mb);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each backward: sync=true on the one whose gradients are final for the step.
  void begin_backward(bool sync);
  // After the last backward: launches buckets not yet started, waits for all, and writes
  // the averages into the grads. A missing gradient counts as zero: a parameter that has a
  // gradient on some rank gets the average on every rank (a zero .grad is made where it
  // had none), so replicas stay identical; one that has none on any rank keeps none. A
  // parameter the last backward did not reach contributes what earlier micro-batches
  // accumulated into its .grad.
  void finish();

  const ReducerStats& stats() const { return stats_; }
  // Which bucket each parameter is in (index into the constructor's list), for tests.
  std::vector<int> bucket_of_params() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the hooks
  ReducerStats stats_;
};

}  // namespace ternion::parallel

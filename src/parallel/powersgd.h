// PowerSGD gradient compression over a data-parallel group (Vogels, Karimireddy and Jaggi,
// "PowerSGD: Practical Low-Rank Gradient Compression for Distributed Optimization",
// NeurIPS 2019), as PyTorch's powerSGD_hook runs it, on host or device tensors.
//
// Each gradient of two or more dimensions is a matrix M (n = its first dimension, m = the
// rest); it is compressed at rank r' = min(n, m, rank) when (n·m)/((n + m)·r') reaches
// min_compression_rate, and all-reduced exactly otherwise. Per step, on every rank:
//   uncompressed gradients: one all-reduce (average) of their concatenation;
//   compressed: M += error (error feedback); P = M·Q; one all-reduce (sum) of every P;
//   orthonormalise P's columns (Gram-Schmidt); Q = Mᵀ·P; one all-reduce (sum) of every Q;
//   M ← P·Qᵀ / N (the decompressed average); error = (M + error) − P·Qᵀ / N.
// Q starts from the counter-based RNG (seed, the gradient's name), the same on every rank;
// with warm_start it is kept from step to step (the all-reduced Q), otherwise drawn again
// each step. When r' = min(n, m) the product is exact: M becomes the plain average.
//
// P is kept transposed (r' × n, its columns as contiguous rows), so orthonormalisation and
// the products are gemm, axpby and sum_squares kernels on the tensors' device.
//
// Groups (buckets) let the compression overlap backward: each group's gradients are sent
// on their own, as soon as they are final, in three collectives (its exact gradients, its
// P's, its Q's, each batched). Every rank issues them in one order: group g's P phase at its
// launch(), group g−1's Q phase right after (its P all-reduce has had group g's backward to
// finish), the rest in end(). Values do not depend on the grouping: each matrix's
// arithmetic is its own, and the collectives sum elementwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "parallel/communicator.h"

namespace ternion::parallel {

struct PowerSgdOptions {
  int rank = 1;                          // r, >= 1
  double min_compression_rate = 2.0;     // compress only where (n·m)/((n+m)·r') >= this
  bool warm_start = true;                // keep Q across steps
  bool error_feedback = true;            // carry M − M̂ into the next step
  double orthogonalization_epsilon = 0;  // added to each column's norm before dividing
};

class PowerSgd {
 public:
  // names and shapes: the gradients reduce() will be given, in that order (the same on every
  // rank of dp). Tensors live on `device` in `dtype` (f32). seed: the run's seed.
  // groups: the gradients' indices per group, every index once, in launch order; empty: one
  // group of all, in order.
  PowerSgd(Communicator& dp, std::vector<std::string> names, const std::vector<Shape>& shapes, DType dtype,
           Device device, const PowerSgdOptions& options, uint64_t seed, std::vector<std::vector<int>> groups = {});

  // Replaces each gradient (contiguous, shapes as constructed) with its dp average: exact
  // for the uncompressed ones, the rank-r' approximation for the others. The same as
  // begin(), launch() of every group, end().
  void reduce(const std::vector<Tensor>& grads);

  // One compressed step, group by group: begin() before it; launch(g, its gradients in the
  // group's order) for g = 0, 1, ... in order, each once they are final (backward may go on
  // meanwhile: the tensors are read now and written in end()); end() after the last, which
  // leaves every launched gradient replaced by its average.
  void begin();
  void launch(size_t g, const std::vector<Tensor>& grads);
  void end();
  size_t num_groups() const { return groups_.size(); }
  const std::vector<int>& group(size_t g) const { return groups_.at(g).members; }
  // Every gradient averaged exactly (before start_step), in one all-reduce.
  void reduce_uncompressed(const std::vector<Tensor>& grads);

  // The rank r' a gradient of this shape is compressed at, or 0 when it is sent exactly.
  static int matrix_rank(const Shape& shape, const PowerSgdOptions& options);

  size_t size() const { return mats_.size(); }
  bool compressed(size_t i) const { return mats_.at(i).rank > 0; }
  const std::string& name(size_t i) const { return mats_.at(i).name; }
  // Compressed gradient i's state: Q [m, r'] and the error [n, m] (this rank's own).
  Tensor& q(size_t i) { return mats_.at(i).q; }
  Tensor& error(size_t i) { return mats_.at(i).error; }
  const Tensor& q(size_t i) const { return mats_.at(i).q; }
  const Tensor& error(size_t i) const { return mats_.at(i).error; }
  // Compressed steps taken (Q's draws without warm start depend on it); checkpoints carry it.
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  // Elements one step all-reduces: the uncompressed gradients, every P and every Q.
  int64_t uncompressed_elements() const { return uncompressed_; }
  int64_t low_rank_elements() const { return p_elems_ + q_elems_; }

 private:
  struct Matrix {
    std::string name;
    int64_t n = 0, m = 0;
    int rank = 0;          // r'; 0: sent uncompressed
    Tensor pt, q, error;   // pt: view of p_buf_ [r', n]; q: view of q_buf_ [m, r']
  };
  struct Group {
    std::vector<int> members;           // indices into mats_, in launch order
    int64_t exact = 0;                  // elements of its uncompressed gradients
    Tensor p, q;                        // its P's and Q's: contiguous ranges of p_buf_, q_buf_
    Tensor flat;                        // its uncompressed gradients, concatenated, in flight
    std::vector<Tensor> grads;          // this step's gradients (group order)
    std::unique_ptr<Work> exact_work, p_work, q_work;
  };
  void orthonormalize(Tensor& pt) const;
  void draw_q(Matrix& mat) const;
  void start_q(size_t g);  // waits for g's P all-reduce, orthonormalises, launches its Q's

  Communicator& dp_;
  PowerSgdOptions opt_;
  uint64_t seed_;
  DType dtype_;
  Device device_;
  std::vector<Matrix> mats_;
  std::vector<Group> groups_;
  size_t next_launch_ = 0, next_q_ = 0;
  bool active_ = false;  // between begin() and end()
  Tensor p_buf_, q_buf_;
  int64_t uncompressed_ = 0, p_elems_ = 0, q_elems_ = 0;
  int64_t steps_ = 0;
};

}  // namespace ternion::parallel

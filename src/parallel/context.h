// ParallelContext: this rank's place in the layout and the communicators of its groups.
// Built once at start (collectively) and passed explicitly to the model, optimizer,
// data-parallel reducer and checkpoint code; nothing reaches for globals.
#pragma once

#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/runtime.h"
#include "parallel/topology.h"

namespace ternion::parallel {

struct ParallelContext {
  Layout layout;
  RuntimeInfo info;
  int rank = 0;  // world rank
  Coord coord;   // this rank's (dp, tp, pp) coordinates
  // The device this rank computes on: one GPU per rank, chosen by local rank (ranks of a
  // node take GPUs 0, 1, ... in turn) when the build has CUDA and GPUs are visible;
  // otherwise the CPU.
  Device device = Device::cpu();
  std::unique_ptr<Communicator> world, dp, tp, pp, embedding;

  // Collective over the world: creates the dp, tp, pp and embedding communicators of
  // `layout` (whose world size must match the runtime's). Ranks of middle pipeline stages
  // get a size-1 embedding group. Groups are made for `device` (options.device is
  // replaced): on CUDA every group's NCCL communicator is created here, eagerly.
  static std::unique_ptr<ParallelContext> create(Runtime& runtime, const Layout& layout,
                                                 const CommOptions& options = {});
  // A world of one (no MPI): every group is the identity.
  static std::unique_ptr<ParallelContext> single();

  bool is_main() const { return rank == 0; }  // writes logs, metrics and final weights
  // "rank 3/8 (dp 1, tp 1, pp 0) on host:local 3"
  std::string describe_rank() const;
  // The layout table rank 0 prints at start: the groups of each axis, one line each.
  std::string describe_layout() const;
};

}  // namespace ternion::parallel

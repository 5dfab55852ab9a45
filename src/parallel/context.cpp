#include "parallel/context.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace ternion::parallel {

std::unique_ptr<ParallelContext> ParallelContext::create(Runtime& runtime, const Layout& layout,
                                                         const CommOptions& comm_options) {
  TN_CHECK(layout.world_size() == runtime.size(), "parallel", "layout ", layout.str(), " but the job has ",
           runtime.size(), " ranks");
  auto ctx = std::make_unique<ParallelContext>();
  ctx->layout = layout;
  ctx->info = runtime.info();
  ctx->rank = runtime.rank();
  ctx->coord = coord_of(layout, ctx->rank);
  if (cuda_available()) ctx->device = Device::cuda(ctx->info.local_rank % cuda_device_count());
  // Every group on the context's device: on CUDA each gets its NCCL communicator now, made
  // by all of its members together, never lazily by the first pair that sends.
  CommOptions options = comm_options;
  options.device = ctx->device;
  ctx->world = runtime.world(options);
  ctx->tp = runtime.new_group("tp", axis_groups(layout, Axis::tp), options);
  ctx->dp = runtime.new_group("dp", axis_groups(layout, Axis::dp), options);
  ctx->pp = runtime.new_group("pp", axis_groups(layout, Axis::pp), options);
  // new_group needs a partition of the world: middle stages form groups of one.
  std::vector<std::vector<int>> emb = embedding_groups(layout);
  std::vector<bool> covered(layout.world_size(), false);
  for (const auto& g : emb)
    for (int r : g) covered[r] = true;
  for (int r = 0; r < layout.world_size(); ++r)
    if (!covered[r]) emb.push_back({r});
  std::sort(emb.begin(), emb.end());
  ctx->embedding = runtime.new_group("embedding", emb, options);
  return ctx;
}

std::unique_ptr<ParallelContext> ParallelContext::single() {
  auto ctx = std::make_unique<ParallelContext>();
  ctx->world = make_self_communicator("world", 0);
  ctx->dp = make_self_communicator("dp", 0);
  ctx->tp = make_self_communicator("tp", 0);
  ctx->pp = make_self_communicator("pp", 0);
  ctx->embedding = make_self_communicator("embedding", 0);
  return ctx;
}

std::string ParallelContext::describe_rank() const {
  return str_cat("rank ", rank, "/", layout.world_size(), " (dp ", coord.dp, ", tp ", coord.tp, ", pp ",
                 coord.pp, ") on ", info.hostname.empty() ? "localhost" : info.hostname, ", local rank ",
                 info.local_rank, ", device ", device.str());
}

std::string ParallelContext::describe_layout() const {
  std::ostringstream os;
  os << "  layout " << layout.str() << " on " << info.num_nodes << (info.num_nodes == 1 ? " node" : " nodes")
     << "\n";
  const auto line = [&](const char* name, const std::vector<std::vector<int>>& groups) {
    os << "    " << name << " groups:";
    const size_t shown = std::min<size_t>(groups.size(), 8);
    for (size_t i = 0; i < shown; ++i) {
      os << " [";
      for (size_t j = 0; j < groups[i].size(); ++j) os << (j ? "," : "") << groups[i][j];
      os << "]";
    }
    if (shown < groups.size()) os << " ... (" << groups.size() << " groups)";
    os << "\n";
  };
  line("dp", axis_groups(layout, Axis::dp));
  line("tp", axis_groups(layout, Axis::tp));
  line("pp", axis_groups(layout, Axis::pp));
  return os.str();
}

}  // namespace ternion::parallel

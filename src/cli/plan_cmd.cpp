// `ternion plan --config FILE --world N [--set key=value]... [--json]`: per rank, the bytes of
// parameters, gradients, AdamW state and activations and the bytes sent per step on each
// axis for the config's layout at N ranks, without starting anything (train/plan.h). The JSON
// has memory.json's field names (ranks: rank, dp, tp, pp, params, grads, optim,
// activations_peak) and
// comm_bytes (dp, tp, pp: rank 0's per step, as metrics.jsonl counts them).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"
#include "train/plan.h"

namespace ternion::cli {

namespace {

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

int run_plan(int argc, char** argv) {
  Args args(argc, argv, {"config", "world"}, {"set"}, {"json"});
  const train::Config config = train::load_config(args.required("config"), args.all("set"));
  const int64_t world = args.integer("world", 1);
  TN_CHECK(world >= 1, "plan", "--world must be >= 1, got ", world);
  const train::Plan plan = train::plan_model_states(config, static_cast<int>(world), config.parallel.powersgd.start_step);
  const train::PlannedRank& r0 = plan.ranks.front();
  std::ostringstream out;
  if (args.has("json")) {
    out << "{\"layout\": {\"dp\": " << plan.layout.dp << ", \"tp\": " << plan.layout.tp << ", \"pp\": "
        << plan.layout.pp << ", \"order\": \"" << plan.layout.order_str() << "\", \"zero_stage\": "
        << config.parallel.zero_stage << "},\n \"ranks\": [\n";
    for (size_t i = 0; i < plan.ranks.size(); ++i) {
      const train::PlannedRank& r = plan.ranks[i];
      out << "  {\"rank\": " << r.rank << ", \"dp\": " << r.coord.dp << ", \"tp\": " << r.coord.tp << ", \"pp\": "
 << r.coord.pp << ", \"params\": " << r.params << ", \"grads\": " << r.grads << ", \"optim\": " << r.optim
          << ", \"activations_peak\": " << r.activations_peak << "}" << (i + 1 < plan.ranks.size() ? "," : "") << "\n";
    }
    out << " ],\n \"comm_bytes\": {\"dp\": " << r0.comm_dp << ", \"tp\": " << r0.comm_tp << ", \"pp\": " << r0.comm_pp
        << "}}\n";
  } else {
    out << "ternion plan: " << plan.layout.str() << ", ZeRO stage " << config.parallel.zero_stage << "\n"
        << "per rank (MiB; the distinct (tp, pp) shards at dp rank 0, and dp rank 1 under ZeRO):\n"
        << "  rank   dp   tp   pp     params      grads      optim  model states  activations   dp MiB/step   tp "
           "MiB/step   pp MiB/step\n";
    for (const train::PlannedRank& r : plan.ranks) {
      if (r.coord.dp > (config.parallel.zero_stage > 0 ? 1 : 0)) continue;
      char line[256];
      std::snprintf(line, sizeof line, "  %4d %4d %4d %4d %10s %10s %10s %13s %12s %13s %13s %13s\n", r.rank,
                    r.coord.dp, r.coord.tp, r.coord.pp, mib(r.params).c_str(), mib(r.grads).c_str(),
                    mib(r.optim).c_str(), mib(r.params + r.grads + r.optim).c_str(), mib(r.activations_peak).c_str(),
                    mib(r.comm_dp).c_str(), mib(r.comm_tp).c_str(), mib(r.comm_pp).c_str());
      out << line;
    }
    out << "Model states are the f32 master parameters, their gradients and AdamW's two moments, and\n"
           "activations what autograd keeps for backward at the schedule's peak, as memory.json counts\n"
           "them; traffic is what metrics.jsonl's comm_bytes counts in a step that neither evaluates nor\n"
           "saves. Not yet predicted: communication buffers, allocator slack and the total peak\n"
           "(docs/planning.md).\n";
  }
  std::cout << out.str();
  return 0;
}

}  // namespace ternion::cli

// `ternion plan --config FILE --world N [--device-memory SIZE] [--search] [--set key=value]...
// [--json]`: per rank, the bytes of parameters, gradients, AdamW state, activations, the sync's
// buffers, the allocator's slack and the peak, and the bytes sent per step on each axis, for
// the config's layout at N ranks, without starting anything (train/plan.h); the estimated
// step time (train/plan_search.h); with --search, every layout of N ranks that fits the
// device, fastest first. The JSON of one layout has memory.json's field names (ranks: rank,
// dp, tp, pp, params, grads, optim, activations_peak, peak) and comm_bytes (dp, tp, pp: rank
// 0's per step, as metrics.jsonl counts them).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"
#include "train/plan.h"
#include "train/plan_search.h"

namespace ternion::cli {

namespace {

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "80GiB", "80 GB", "81920MiB", "85899345920": bytes. KB, MB, GB, TB are powers of 1000,
// KiB, MiB, GiB, TiB of 1024; a bare number is bytes.
int64_t parse_size(const std::string& text) {
  size_t at = 0;
  double value = 0;
  try {
    value = std::stod(text, &at);
  } catch (const std::exception&) {
    fail("plan", str_cat("--device-memory ", text, " is not a size (say 80GiB or 80GB)"));
  }
  std::string unit;
  for (size_t i = at; i < text.size(); ++i)
    if (!std::isspace(static_cast<unsigned char>(text[i]))) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  const char* const decimal[] = {"kb", "mb", "gb", "tb"};
  const char* const binary[] = {"kib", "mib", "gib", "tib"};
  for (int k = 0; k < 4; ++k) {
    if (unit == decimal[k]) scale = std::pow(1000.0, k + 1);
    if (unit == binary[k]) scale = std::pow(1024.0, k + 1);
  }
  TN_CHECK(scale > 0 && value > 0, "plan", "--device-memory ", text,
           " is not a positive size in B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
  return static_cast<int64_t>(value * scale);
}

train::StepTimeModel time_model(const Args& args) {
  train::StepTimeModel m;
  m.device_flops = args.number("device-tflops", 0) * 1e12;
  m.efficiency = args.number("efficiency", m.efficiency);
  m.intra_node_bw = args.number("intra-node-gbps", m.intra_node_bw / 1e9) * 1e9;
  m.inter_node_bw = args.number("inter-node-gbps", m.inter_node_bw / 1e9) * 1e9;
  m.gpus_per_node = static_cast<int>(args.integer("gpus-per-node", m.gpus_per_node));
  TN_CHECK(m.efficiency > 0 && m.efficiency <= 1, "plan", "--efficiency must be in (0, 1], got ", m.efficiency);
  TN_CHECK(m.intra_node_bw > 0 && m.inter_node_bw > 0, "plan", "link rates must be positive");
  TN_CHECK(m.gpus_per_node >= 1, "plan", "--gpus-per-node must be >= 1, got ", m.gpus_per_node);
  return m;
}

std::string assumptions(const train::Config& config, const train::StepTimeModel& m) {
  std::ostringstream o;
  o << "Step time assumes: compute at " << fixed(m.flops_for(config) / 1e12, 0) << " TFLOP/s per device x "
    << fixed(m.efficiency, 2) << " (--device-tflops, --efficiency),\n  the same at every micro-batch size; links of "
    << fixed(m.intra_node_bw / 1e9, 0) << " GB/s within a node of " << m.gpus_per_node << " ranks and "
    << fixed(m.inter_node_bw / 1e9, 0) << " GB/s between nodes\n  (bus bandwidth; --intra-node-gbps, "
       "--inter-node-gbps, --gpus-per-node); the pipeline bubble (pp-1)/(m*v);\n  no overlap of communication "
       "with compute (docs/planning.md).\n";
  return o.str();
}

std::string time_json(const train::StepTime& t) {
  std::ostringstream o;
  o << "{\"total\": " << t.total() << ", \"compute\": " << t.compute << ", \"recompute\": " << t.recompute
    << ", \"bubble\": " << t.bubble << ", \"dp\": " << t.dp << ", \"tp\": " << t.tp << ", \"pp\": " << t.pp << "}";
  return o.str();
}

std::string assumptions_json(const train::Config& config, const train::StepTimeModel& m) {
  std::ostringstream o;
  o << "{\"device_flops\": " << m.flops_for(config) << ", \"efficiency\": " << m.efficiency
    << ", \"intra_node_bytes_per_s\": " << m.intra_node_bw << ", \"inter_node_bytes_per_s\": " << m.inter_node_bw
    << ", \"gpus_per_node\": " << m.gpus_per_node << "}";
  return o.str();
}

int run_search(const Args& args, const train::Config& config, int world, int64_t device_memory,
               const train::StepTimeModel& model) {
  const train::SearchResult res = train::search_layouts(config, world, device_memory, model);
  const size_t top = static_cast<size_t>(args.integer("top", 10));
  std::ostringstream out;
  if (args.has("json")) {
    out << "{\"world\": " << world << ", \"device_memory\": " << device_memory << ", \"assumptions\": "
        << assumptions_json(config, model) << ",\n \"tried\": " << res.tried << ", \"invalid\": " << res.invalid
        << ", \"too_big\": " << res.too_big << ",\n \"candidates\": [\n";
    for (size_t i = 0; i < res.fits.size() && i < top; ++i) {
      const train::Candidate& k = res.fits[i];
      out << "  {\"dp\": " << k.dp << ", \"tp\": " << k.tp << ", \"pp\": " << k.pp << ", \"zero_stage\": "
          << k.zero_stage << ", \"activation_checkpointing\": \"" << k.recompute << "\", \"pp_schedule\": \""
          << k.schedule << "\", \"virtual_stages\": " << k.virtual_stages << ", \"micro_batch_size\": "
          << k.micro_batch_size << ", \"sequence_parallel\": " << (k.sequence_parallel ? "true" : "false")
          << ", \"peak\": " << k.peak.bytes << ", \"peak_rank\": " << k.peak.rank
          << ", \"step_seconds\": " << time_json(k.time) << "}" << (i + 1 < std::min(top, res.fits.size()) ? "," : "")
          << "\n";
    }
    out << " ]}\n";
  } else {
    out << "ternion plan --search: " << world << " ranks, " << gib(device_memory) << " per device; " << res.tried
        << " layouts planned (" << res.invalid << " more refused by the config's rules), " << res.too_big
        << " too big, " << res.fits.size() << " fit" << (res.fits.empty() ? "" : "; fastest first") << ":\n";
    if (!res.fits.empty())
      out << "     dp   tp   pp  zero  recompute  schedule      mbs  sp       peak   step s  (compute  recomp  bubble"
             "       dp       tp       pp)\n";
    for (size_t i = 0; i < res.fits.size() && i < top; ++i) {
      const train::Candidate& k = res.fits[i];
      char line[320];
      const std::string sched = k.pp == 1 ? "-" : (k.schedule == "interleaved" ? "interleaved2" : k.schedule);
      std::snprintf(line, sizeof line,
                    "  %5d %4d %4d %5d  %-9s  %-12s %4lld  %-3s %10s %8.3f  (%7.3f %7.3f %7.3f %8.3f%s %7.3f%s %7.3f%s)\n",
                    k.dp, k.tp, k.pp, k.zero_stage, k.recompute.c_str(), sched.c_str(),
                    static_cast<long long>(k.micro_batch_size), k.sequence_parallel ? "on" : "off",
                    gib(k.peak.bytes).c_str(), k.time.total(), k.time.compute, k.time.recompute, k.time.bubble,
                    k.time.dp, k.time.dp_inter ? "*" : " ", k.time.tp, k.time.tp_inter ? "*" : " ", k.time.pp,
                    k.time.pp_inter ? "*" : " ");
      out << line;
    }
    if (res.fits.size() > top) out << "  (" << res.fits.size() - top << " more; --top N shows more)\n";
    out << "* the axis's groups span nodes.\n" << assumptions(config, model);
  }
  std::cout << out.str();
  return 0;
}

}  // namespace

int run_plan(int argc, char** argv) {
  Args args(argc, argv,
            {"config", "world", "device-memory", "top", "device-tflops", "efficiency", "intra-node-gbps",
             "inter-node-gbps", "gpus-per-node"},
            {"set"}, {"json", "search"});
  const train::Config config = train::load_config(args.required("config"), args.all("set"));
  const int64_t world = args.integer("world", 1);
  TN_CHECK(world >= 1, "plan", "--world must be >= 1, got ", world);
  const int64_t device_memory = args.has("device-memory") ? parse_size(args.get("device-memory")) : 0;
  const train::StepTimeModel model = time_model(args);
  if (args.has("search")) return run_search(args, config, static_cast<int>(world), device_memory, model);
  const train::Plan plan = train::plan_model_states(config, static_cast<int>(world), config.parallel.powersgd.start_step);
  const train::PlannedRank& r0 = plan.ranks.front();
  const train::PlanPeak peak = train::largest_peak(plan);
  const train::StepTime time = train::estimate_step_time(config, plan, model);
  std::ostringstream out;
  if (args.has("json")) {
    out << "{\"layout\": {\"dp\": " << plan.layout.dp << ", \"tp\": " << plan.layout.tp << ", \"pp\": "
        << plan.layout.pp << ", \"order\": \"" << plan.layout.order_str() << "\", \"zero_stage\": "
        << config.parallel.zero_stage << "},\n \"ranks\": [\n";
    for (size_t i = 0; i < plan.ranks.size(); ++i) {
      const train::PlannedRank& r = plan.ranks[i];
      out << "  {\"rank\": " << r.rank << ", \"dp\": " << r.coord.dp << ", \"tp\": " << r.coord.tp << ", \"pp\": "
          << r.coord.pp << ", \"params\": " << r.params << ", \"grads\": " << r.grads << ", \"optim\": " << r.optim
          << ", \"activations_peak\": " << r.activations_peak << ", \"peak\": " << r.peak << ", \"buffers\": "
          << r.buffers << ", \"slack\": " << r.slack << "}" << (i + 1 < plan.ranks.size() ? "," : "") << "\n";
    }
    out << " ],\n \"comm_bytes\": {\"dp\": " << r0.comm_dp << ", \"tp\": " << r0.comm_tp << ", \"pp\": " << r0.comm_pp
        << "},\n \"step_seconds\": " << time_json(time) << ", \"assumptions\": " << assumptions_json(config, model);
    if (device_memory > 0)
      out << ",\n \"device_memory\": " << device_memory << ", \"fits\": " << (peak.bytes <= device_memory ? "true" : "false");
    out << "}\n";
  } else {
    out << "ternion plan: " << plan.layout.str() << ", ZeRO stage " << config.parallel.zero_stage << ", recompute "
        << config.train.activation_checkpointing << "\n"
        << "per rank (MiB; the distinct (tp, pp) shards at dp rank 0, and dp rank 1 under ZeRO):\n"
        << "  rank   dp   tp   pp     params      grads      optim  activations    buffers      slack       peak"
           "   dp MiB/step   tp MiB/step   pp MiB/step\n";
    for (const train::PlannedRank& r : plan.ranks) {
      if (r.coord.dp > (config.parallel.zero_stage > 0 ? 1 : 0)) continue;
      char line[320];
      std::snprintf(line, sizeof line, "  %4d %4d %4d %4d %10s %10s %10s %12s %10s %10s %10s %13s %13s %13s\n", r.rank,
                    r.coord.dp, r.coord.tp, r.coord.pp, mib(r.params).c_str(), mib(r.grads).c_str(),
                    mib(r.optim).c_str(), mib(r.activations_peak).c_str(), mib(r.buffers).c_str(),
                    mib(r.slack).c_str(), mib(r.peak).c_str(), mib(r.comm_dp).c_str(), mib(r.comm_tp).c_str(),
                    mib(r.comm_pp).c_str());
      out << line;
    }
    out << "Model states are the f32 master parameters, their gradients and AdamW's two moments;\n"
           "activations what autograd keeps for backward at the schedule's peak; buffers the gradient\n"
           "sync's (reducer buckets, ZeRO's gathered and in-flight buckets, PowerSGD's); slack the\n"
           "allocator's rounding; peak all of it at the step's busiest moment, as memory.json counts\n"
           "them. Traffic is what metrics.jsonl's comm_bytes counts in a step that neither evaluates nor\n"
           "saves (docs/planning.md).\n";
    out << "Estimated step: " << fixed(time.total(), 3) << " s (compute " << fixed(time.compute, 3) << ", recompute "
        << fixed(time.recompute, 3) << ", bubble " << fixed(time.bubble, 3) << ", dp " << fixed(time.dp, 3)
        << (time.dp_inter ? " between nodes" : "") << ", tp " << fixed(time.tp, 3)
        << (time.tp_inter ? " between nodes" : "") << ", pp " << fixed(time.pp, 3)
        << (time.pp_inter ? " between nodes" : "") << ").\n"
        << assumptions(config, model);
    if (device_memory > 0) {
      out << (peak.bytes <= device_memory ? "Fits: " : "Does not fit: ") << "the largest peak, rank " << peak.rank
          << "'s, is " << gib(peak.bytes) << (peak.bytes <= device_memory ? " of " : ", more than ")
          << gib(device_memory) << " per device.\n";
    }
  }
  std::cout << out.str();
  return 0;
}

}  // namespace ternion::cli

#include "train/plan_search.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "parallel/topology.h"
#include "train/precision.h"
#include "train/trainer.h"

namespace ternion::train {

namespace {

// Whether the groups along `axis` span more than one node of gpus_per_node consecutive ranks.
bool spans_nodes(const parallel::Layout& layout, parallel::Axis axis, int gpus_per_node) {
  if (layout.size(axis) == 1) return false;
  for (const std::vector<int>& group : parallel::axis_groups(layout, axis))
    for (const int rank : group)
      if (rank / gpus_per_node != group.front() / gpus_per_node) return true;
  return false;
}

}  // namespace

double StepTimeModel::flops_for(const Config& config) const {
  if (device_flops > 0) return device_flops;
  return cuda_peak_flops(config.precision == "fp32" ? DType::f32 : DType::bf16);
}

StepTime estimate_step_time(const Config& config, const Plan& plan, const StepTimeModel& model) {
  const parallel::Layout& l = plan.layout;
  const ModelConfig& mc = config.model;
  const double C = mc.n_embd, T = mc.block_size, L = mc.n_layer;
  const double tokens = static_cast<double>(config.train.global_batch_size) * T;
  const double rate = model.flops_for(config) * model.efficiency * l.world_size();
  StepTime t;
  t.compute = model_flops_per_token(config) * tokens / rate;
  // Recomputation: the layers of each stage it covers (train.checkpoint_layers, from each
  // stage's first; 0 = all), each running its forward, or its attention core's, again.
  const std::string& mode = config.train.activation_checkpointing;
  if (mode != "none") {
    const double per_stage = L / l.pp, chosen = config.train.checkpoint_layers;
    const double layers = (chosen == 0 ? per_stage : std::min(chosen, per_stage)) * l.pp;
    const double block_params = 12 * C * C + 13 * C;
    const double per_token = mode == "full" ? 2 * block_params + 2 * C * T : 2 * C * T;
    t.recompute = layers * per_token * tokens / rate;
  }
  if (l.pp > 1) {
    const double m = static_cast<double>(config.train.global_batch_size) /
                     static_cast<double>(config.train.micro_batch_size * l.dp);
    const double v = config.parallel.pp_schedule == "interleaved" ? config.parallel.virtual_stages : 1;
    t.bubble = (t.compute + t.recompute) * (l.pp - 1) / (m * v);
  }
  int64_t dp = 0, tp = 0, pp = 0;
  for (const PlannedRank& r : plan.ranks) {
    dp = std::max(dp, r.comm_dp);
    tp = std::max(tp, r.comm_tp);
    pp = std::max(pp, r.comm_pp);
  }
  t.dp_inter = spans_nodes(l, parallel::Axis::dp, model.gpus_per_node);
  t.tp_inter = spans_nodes(l, parallel::Axis::tp, model.gpus_per_node);
  t.pp_inter = spans_nodes(l, parallel::Axis::pp, model.gpus_per_node);
  const auto seconds = [&](int64_t bytes, bool inter) {
    return static_cast<double>(bytes) / (inter ? model.inter_node_bw : model.intra_node_bw);
  };
  t.dp = seconds(dp, t.dp_inter);
  t.tp = seconds(tp, t.tp_inter);
  t.pp = seconds(pp, t.pp_inter);
  return t;
}

Config Candidate::applied_to(const Config& config) const {
  Config c = config;
  c.parallel.dp = dp;
  c.parallel.tp = tp;
  c.parallel.pp = pp;
  c.parallel.pp_layers.clear();
  c.parallel.zero_stage = zero_stage;
  c.parallel.sequence_parallel = sequence_parallel;
  c.parallel.pp_schedule = schedule;
  c.parallel.virtual_stages = virtual_stages;
  c.train.micro_batch_size = static_cast<int>(micro_batch_size);
  c.train.activation_checkpointing = recompute;
  return c;
}

PlanPeak largest_peak(const Plan& plan) {
  PlanPeak p;
  for (const PlannedRank& r : plan.ranks)
    if (r.peak > p.bytes) p = {r.peak, r.rank};
  return p;
}

SearchResult search_layouts(const Config& config, int world_size, int64_t device_memory, const StepTimeModel& model) {
  TN_CHECK(world_size >= 1, "plan", "--world must be >= 1, got ", world_size);
  TN_CHECK(device_memory > 0, "plan", "--search needs --device-memory (the bytes one device holds)");
  SearchResult out;
  const int64_t step = config.parallel.powersgd.start_step;
  for (int tp = 1; tp <= world_size; ++tp) {
    if (world_size % tp) continue;
    for (int pp = 1; pp <= world_size / tp; ++pp) {
      if ((world_size / tp) % pp) continue;
      const int dp = world_size / (tp * pp);
      struct Schedule {
        const char* name;
        int v;
      };
      std::vector<Schedule> schedules{{"1f1b", 1}};
      if (pp > 1) schedules = {{"1f1b", 1}, {"gpipe", 1}, {"interleaved", 2}};
      for (const int64_t mbs : {1, 2, 4, 8}) {
        if (config.train.global_batch_size % (mbs * dp)) continue;
        for (const Schedule& sched : schedules) {
          for (const char* recompute : {"none", "selective", "full"}) {
            for (int zero = 0; zero <= 3; ++zero) {
              Candidate k;
              k.dp = dp;
              k.tp = tp;
              k.pp = pp;
              k.zero_stage = zero;
              k.virtual_stages = sched.v;
              k.micro_batch_size = mbs;
              k.sequence_parallel = tp > 1;
              k.recompute = recompute;
              k.schedule = sched.name;
              const Config c = k.applied_to(config);
              Plan plan;
              try {
                plan = plan_model_states(c, world_size, step, /*every_rank=*/false);
              } catch (const Error&) {
                ++out.invalid;
                continue;
              }
              ++out.tried;
              const PlanPeak peak = largest_peak(plan);
              if (peak.bytes > device_memory) {
                ++out.too_big;
                continue;
              }
              k.peak = peak;
              k.time = estimate_step_time(c, plan, model);
              out.fits.push_back(std::move(k));
            }
          }
        }
      }
    }
  }
  // Times within about 0.5% of each other are a tie (the model is not that precise), which
  // the smaller peak wins.
  const auto key = [](const Candidate& k) { return std::llround(std::log(k.time.total()) / std::log(1.005)); };
  std::stable_sort(out.fits.begin(), out.fits.end(), [&](const Candidate& a, const Candidate& b) {
    if (key(a) != key(b)) return key(a) < key(b);
    return a.peak.bytes < b.peak.bytes;
  });
  return out;
}

}  // namespace ternion::train

// ternion plan's second part: an estimated step time for a planned layout, and the search
// over the layouts of N ranks that fit a device's memory, ranked by it.
//
// The step-time model is deliberately simple, and every assumption is a field here that
// `ternion plan` prints:
//   compute   the model's FLOPs per step (6N + 6LCT per token, model::Gpt::flops_per_token,
//             plus what recomputation runs again: a block's forward, 2·P_block + 2·C·T per
//             token, under full; the attention core's forward, 2·C·T, under selective),
//             spread evenly over the ranks, at device_flops × efficiency;
//   bubble    a pipeline's idle time, compute × (pp − 1) / (m · v), with m micro-batches per
//             data-parallel rank and v virtual stages (Narayanan et al. 2021);
//   traffic   each axis's bytes per step (the plan's comm_bytes, bus bytes as nccl-tests
//             counts them, the most any rank sends) at the bus bandwidth of the link its
//             groups use: within a node when every group of that axis lies on one node of
//             gpus_per_node consecutive ranks, between nodes otherwise;
//   nothing overlaps: the estimate is the sum, an upper bound for a run that hides its
//             data-parallel traffic behind backward.
// It ranks layouts; it does not promise a run's seconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/config.h"
#include "train/plan.h"

namespace ternion::train {

struct StepTimeModel {
  double device_flops = 0;        // FLOP/s; 0: the dense peak MFU is stated against (train/precision.h)
  double efficiency = 0.5;        // the fraction of it the model's matmuls reach
  double intra_node_bw = 450e9;   // bytes/s of bus bandwidth within a node (NVLink 4, H100 SXM)
  double inter_node_bw = 50e9;    // between nodes (one 400 Gb/s InfiniBand NDR port per GPU)
  int gpus_per_node = 8;

  double flops_for(const Config& config) const;  // device_flops, or the precision's peak
};

struct StepTime {
  double compute = 0, recompute = 0, bubble = 0, dp = 0, tp = 0, pp = 0;  // seconds
  bool dp_inter = false, tp_inter = false, pp_inter = false;  // the axis's groups span nodes
  double total() const { return compute + recompute + bubble + dp + tp + pp; }
};

// The step time of config's layout at plan (plan_model_states of the same config).
StepTime estimate_step_time(const Config& config, const Plan& plan, const StepTimeModel& model);

// The most bytes any planned rank allocates at its peak, and that rank.
struct PlanPeak {
  int64_t bytes = 0;
  int rank = 0;
};
PlanPeak largest_peak(const Plan& plan);

struct Candidate {
  int dp = 1, tp = 1, pp = 1, zero_stage = 0, virtual_stages = 1;
  int64_t micro_batch_size = 1;
  bool sequence_parallel = false;
  std::string recompute, schedule;
  PlanPeak peak;
  StepTime time;

  // config with this layout's keys set (the rest as given).
  Config applied_to(const Config& config) const;
};

struct SearchResult {
  std::vector<Candidate> fits;  // fastest first
  int64_t tried = 0;            // layouts planned
  int64_t invalid = 0;          // refused by the config's rules (the error a run would raise)
  int64_t too_big = 0;          // planned, but their peak exceeds device_memory
};

// Every layout of world_size ranks: dp × tp × pp (the config's order), ZeRO stage 0–3,
// recompute none/selective/full, pipeline schedule 1f1b, gpipe or interleaved (2 virtual
// stages) when pp > 1, micro-batch size 1, 2, 4 or 8 (dividing the batch), sequence
// parallelism with tp > 1 (Megatron's recommendation); the rest of config as given. Those
// whose largest peak fits device_memory, ranked by estimated step time (within 0.5%, a tie
// that the smaller peak wins).
SearchResult search_layouts(const Config& config, int world_size, int64_t device_memory, const StepTimeModel& model);

}  // namespace ternion::train

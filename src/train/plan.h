// ternion plan's model, first part: per-rank bytes of model state for a config at a world
// size, a pure function of the config and the layout (nothing is allocated). Each rank's
// shard is built described only (GptConfig::allocate = false) by the code that builds it for
// training (shard_of, model::Gpt), and laid out as the trainer lays it out: whole tensors, or
// ZeRO's flat buckets (zero_bucket_groups, parallel::FlatLayout) with their padding. The
// fields are memory.json's (docs/metrics.md), so a plan and a run compare field by field;
// train.plan checks them equal to the byte against real runs.
// Traffic: each rank's bytes sent per step on each axis, as metrics.jsonl's comm_bytes
// counts them (docs/metrics.md; a step that neither evaluates nor saves, at `step` for
// PowerSGD's start).
// Activations: the bytes autograd keeps for backward (memory.json's activations_peak), per
// block by recompute mode as Gpt states them (docs/config.md), plus the embeddings' and the
// head's, times the micro-batches the pipeline schedule holds at once (its simulator's
// peak), plus full recomputation's one re-run block. Exact at tp = 1; with tensor and
// sequence parallelism it follows the same accounting of what each op saves, within 10%
// of the runs (train.plan).
// Peak: the model states and the sync's buffers plus the larger of two moments of the last
// micro-batch's backward, every block rounded to the caching allocator's size class (the
// slack); within 10% of the runs (train.plan). The step time of a layout and the search over
// layouts: train/plan_search.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parallel/topology.h"
#include "train/config.h"

namespace ternion::train {

struct PlannedRank {
  int rank = 0;
  parallel::Coord coord;
  int64_t params = 0, grads = 0, optim = 0;  // bytes, as memory.json's fields
  int64_t comm_dp = 0, comm_tp = 0, comm_pp = 0;  // bytes sent per step, as comm_bytes'
  int64_t activations_peak = 0;                    // bytes, as memory.json's
  int64_t buffers = 0;  // the gradient sync's buffers at the peak (reducer, ZeRO gathers, PowerSGD)
  int64_t slack = 0;    // the allocator's rounding of the blocks live at the peak
  int64_t peak = 0;     // bytes allocated at the step's peak, as memory.json's
};

struct Plan {
  parallel::Layout layout;
  std::vector<PlannedRank> ranks;  // by world rank
};

// Throws naming the key (as a run would) when the config does not fit world_size ranks.
// every_rank = false plans one rank per pipeline stage (dp and tp coordinates 0: the ranks
// that hold the most, ZeRO's padding being at the end of each bucket), for searches.
Plan plan_model_states(const Config& config, int world_size, int64_t step = 0, bool every_rank = true);

// The model's FLOPs per token for forward and backward (model::Gpt::flops_per_token).
double model_flops_per_token(const Config& config);

}  // namespace ternion::train

// Part of the step: building this rank's shard of the model. Which layers a pipeline
// stage holds, the embeddings on the first stage and ln_f with the head on the last, the
// tensor-parallel rank; then the initial values, from run.seed or model.init_from, which
// are the same whatever the layout (a pure function of seed, name and global index).
#pragma once

#include <memory>
#include <vector>

#include "model/gpt.h"
#include "optim/adamw.h"
#include "parallel/context.h"
#include "train/config.h"

namespace ternion::train {

// Stage c.pp of l.pp holds the layers pp_layers gives it (stage sizes, first to last,
// summing to L), or [c.pp·L/pp, (c.pp+1)·L/pp) when pp_layers is empty (L divisible by
// pp); the embeddings when it is the first stage, ln_f and the head when it is the last;
// tp rank c.tp of l.tp. With virtual_stages v > 1 (the interleaved schedule) stage s holds v
// chunks of L/(pp·v) layers, chunk c being virtual stage c·pp + s.
model::GptShard shard_for(const ModelConfig& model, const parallel::Layout& l, const parallel::Coord& c,
                          const std::vector<int>& pp_layers = {}, int virtual_stages = 1);

model::GptConfig gpt_config(const Config& config, Device device, DType compute);

// The shard rank `c` of layout `l` holds under `config` (pipeline stage and chunks as the
// schedule needs them, tp rank, sequence parallelism): what build_model builds.
model::GptShard shard_of(const Config& config, const parallel::Layout& l, const parallel::Coord& c);

// This rank's shard on ctx.device, initialised: init_parameter from run.seed, or each
// parameter's boxes copied out of the whole tensors in model.init_from.
std::unique_ptr<model::Gpt> build_model(const Config& config, const parallel::ParallelContext& ctx, DType compute);

// The parameters as the optimizer and the gradient norm see them (primary flags kept).
std::vector<optim::ParamRef> param_refs(model::Gpt& gpt);

}  // namespace ternion::train

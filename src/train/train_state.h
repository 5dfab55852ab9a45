// The training state a checkpoint holds (parameters, AdamW moments, data position, RNG
// seed, config, layout): staged for a save, loaded on resume. Internal to src/train.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "checkpoint/checkpoint.h"
#include "data/sampler.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "parallel/context.h"
#include "train/config.h"

namespace ternion::train {

// The whole training state this process holds, staged as host copies for a checkpoint.
// With data parallelism every dp rank holds the same replica: only dp rank 0 writes it.
checkpoint::State stage_state(const Config& config, const model::Gpt& gpt, const optim::AdamW& opt,
                              int64_t next_step, const data::SamplerState& sampler,
                              const parallel::ParallelContext& ctx);

// Loads checkpoint `dir` into the model, optimizer and sampler; returns the step to
// continue from. Throws "[resume] ..." when the checkpoint is for another model, other
// errors (naming file and tensor) when it is damaged.
int64_t load_state(const std::string& dir, const Config& config, model::Gpt& gpt, optim::AdamW& opt,
                   data::BatchSampler& sampler, const parallel::Layout& layout, std::ostream& log);

// `how`: "none" (returns 0), "auto" (run.dir's latest, then older complete checkpoints,
// skipping damaged ones with a warning; 0 when there is none) or a checkpoint directory.
// Collective over the world: every rank loads the same checkpoint or every rank throws.
int64_t resume(const std::string& how, const Config& config, model::Gpt& gpt, optim::AdamW& opt,
               data::BatchSampler& sampler, parallel::ParallelContext& ctx, std::ostream& log);

}  // namespace ternion::train

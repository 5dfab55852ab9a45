// The training state a checkpoint holds (parameters and AdamW moments box by box, the
// loss scaler, data position, RNG seed, config, layout): staged for a save, loaded on
// resume. Internal to src/train.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "checkpoint/checkpoint.h"
#include "data/sampler.h"
#include "model/gpt.h"
#include "parallel/context.h"
#include "train/config.h"
#include "train/update.h"
#include "train/zero.h"

namespace ternion::train {

// What this rank writes: each primary parameter's boxes (and their
// AdamW moments) at their global offsets, on dp rank 0 only (the other dp ranks hold the
// same replica). Tied copies and tp-replicated copies on tp ranks > 0 are not written.
// Under ZeRO (sync.zero) every dp rank writes its own range instead: each piece of a
// parameter in it as boxes `<name>@z<bucket>.<i>` (FORMAT.md), values and moments alike.
// With PowerSGD (sync.powersgd) every rank also writes its error buffers and dp rank 0 each
// matrix's Q (FORMAT.md "PowerSGD state"). Host parameters and moments are deferred entries
// (checkpoint::deferred: the save copies them; nothing may change them before
// StepCheckpoints::before_update); the rest is copied now.
struct SyncState {
  const ZeroSync* zero = nullptr;
  parallel::PowerSgd* powersgd = nullptr;
};
checkpoint::State stage_state(const Config& config, const model::Gpt& gpt, const OptimizerStep& update,
                              int64_t next_step, const data::SamplerState& sampler,
                              const parallel::ParallelContext& ctx, const SyncState& sync = {});

struct LoadResult {
  enum class Status {
    kOk,
    kIncompatible,  // a checkpoint of another model: the user's mistake, never skipped
    kDamaged,       // unreadable, incomplete or failing a checksum: resume may skip it
  };
  Status status = Status::kOk;
  int64_t step = 0;     // the step to continue from (kOk)
  std::string message;  // why not (otherwise)
  int64_t bytes_read = 0;  // tensor bytes this rank read from the checkpoint's files (kOk)
};

// Loads checkpoint `dir` into the model (every box this rank holds, tied copies included),
// the optimizer, the loss scaler and the sampler; under ZeRO the optimizer's moments (and
// at stage 3 the parameters) of this rank's pieces only. Any layout's checkpoint loads.
// PowerSGD's state loads when the checkpoint was written at the same dp, tp, pp and rank
// (coord: this rank's); otherwise it starts afresh, with a warning.
// A checkpoint of other training data (data.train) loads with a warning naming both.
LoadResult load_state(const std::string& dir, const Config& config, model::Gpt& gpt, OptimizerStep& update,
                      data::BatchSampler& sampler, const parallel::Layout& layout, std::ostream& log,
                      std::ostream& warn, const SyncState& sync = {}, const parallel::Coord& coord = {});

// `how`: "none" (returns 0), "auto" (run.dir's latest, then older complete checkpoints,
// skipping damaged ones with a warning; 0 when there is none) or a checkpoint directory.
// Collective over the world: every rank loads the same checkpoint or every rank throws.
// Warnings go to `warn`, before the error when every checkpoint is damaged. *bytes_read
// (when given): the tensor bytes this rank read from the loaded checkpoint's files.
int64_t resume(const std::string& how, const Config& config, model::Gpt& gpt, OptimizerStep& update,
               data::BatchSampler& sampler, parallel::ParallelContext& ctx, std::ostream& log,
               std::ostream& warn, const SyncState& sync = {}, int64_t* bytes_read = nullptr);

}  // namespace ternion::train

// Whole tensors from a sharded model, where a whole model is needed (model.h5, sampling):
// every rank's primary boxes (dp rank 0's replica) are sent to world rank 0, which
// assembles each parameter's global tensor. Collective over the world.
#pragma once

#include <vector>

#include "checkpoint/weights_file.h"
#include "model/gpt.h"
#include "parallel/context.h"

namespace ternion::train {

// On world rank 0: every parameter of the whole model as a host f32 tensor of its global
// shape, named by its nanoGPT name, in pipeline-stage order. Elsewhere: empty. Throws on
// rank 0 naming a parameter whose elements no rank holds.
std::vector<checkpoint::NamedTensor> gather_whole_weights(const model::Gpt& gpt, parallel::ParallelContext& ctx);

}  // namespace ternion::train

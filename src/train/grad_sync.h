// Part of the step: gradient synchronisation. The schedule calls it around each backward;
// after finish() every rank's .grad holds what its optimizer step needs.
//
//   for each micro-batch: sync.begin_backward(last); backward(...)
//   sync.finish()
//
// Today: the data-parallel average over ctx.dp in buckets started during the last
// backward (parallel::GradReducer), then the tied embedding's gradient summed over the
// embedding group (first and last pipeline stage). ZeRO's reduce-scatter and PowerSGD
// plug in here.
#pragma once

#include <memory>

#include "model/gpt.h"
#include "parallel/context.h"
#include "train/config.h"

namespace ternion::train {

class GradSync {
 public:
  virtual ~GradSync() = default;
  // Before each micro-batch's backward; last: its gradients complete the step.
  virtual void begin_backward(bool last) = 0;
  // After the last backward: gradients are synchronised when this returns.
  virtual void finish() = 0;
  // Time the last finish() blocked on communication, ms.
  virtual double wait_ms() const = 0;
};

// The gradient synchronisation `config` asks for over ctx's groups, for gpt's parameters.
// A size-1 dp group synchronises nothing.
std::unique_ptr<GradSync> make_grad_sync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt);

}  // namespace ternion::train

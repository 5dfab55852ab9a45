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
#include "parallel/powersgd.h"
#include "train/config.h"

namespace ternion::train {

class GradSync {
 public:
  virtual ~GradSync() = default;
  // Before a step's first backward: the step (0-based) it computes.
  virtual void begin_step(int64_t step) { (void)step; }
  // Before each micro-batch's backward; last: its gradients complete the step.
  virtual void begin_backward(bool last) = 0;
  // After the last backward: gradients are synchronised when this returns.
  virtual void finish() = 0;
  // Time the last finish() blocked on communication, ms.
  virtual double wait_ms() const = 0;
  // The PowerSGD compressor whose state checkpoints carry; null without one.
  virtual parallel::PowerSgd* powersgd() { return nullptr; }
};

// parallel.powersgd's options as the compressor takes them.
parallel::PowerSgdOptions powersgd_options(const Config& config);

// The compressor parallel.powersgd asks for over ctx.dp for gpt's gradients (their local
// shapes, in parameter order), or null when its rank is 0 or dp is 1 (nothing is sent).
// groups: PowerSgd's (empty: one group of all, compressed after the last backward).
std::unique_ptr<parallel::PowerSgd> make_powersgd(const Config& config, parallel::ParallelContext& ctx,
                                                  const model::Gpt& gpt, std::vector<std::vector<int>> groups = {});

// What every synchronisation does after the dp reduction: the sequence-parallel parameters'
// partial gradients summed over tp (one all-reduce of their concatenation), and the tied
// embedding's two copies summed over the embedding group. grads: the gradients to sum
// (whole tensors, or under ZeRO this rank's pieces of them).
void sum_over_tp(parallel::Communicator& tp, const std::vector<Tensor>& grads);

// The gradient synchronisation `config` asks for over ctx's groups, for gpt's parameters.
// A size-1 dp group synchronises nothing.
std::unique_ptr<GradSync> make_grad_sync(const Config& config, parallel::ParallelContext& ctx, model::Gpt& gpt);

}  // namespace ternion::train

// Part of the step: checkpoints and preemption at step boundaries. Commits a finished
// asynchronous save, agrees with every rank whether to stop (SIGUSR1, SIGTERM or a first
// SIGINT on any rank, or TrainOptions::stop_at_step), and saves when the interval, the
// last step or a stop asks, unless the weights are not finite (then it throws and the
// last checkpoint stays the latest). Every decision is taken collectively, so all ranks
// save and stop at the same step. A second SIGINT ends the process at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "checkpoint/checkpoint.h"
#include "parallel/context.h"
#include "train/config.h"

namespace ternion::train {

// step: the 0-based step just finished. A save is due every `interval` steps (0: never)
// and, when saving at all, at the last step; and always when the run stops early.
bool save_due(int64_t step, int64_t interval, bool last, bool stop);

class StepCheckpoints {
 public:
  // Installs the preemption signal handlers until destruction.
  StepCheckpoints(const Config& config, parallel::ParallelContext& ctx, int64_t stop_at_step);
  ~StepCheckpoints();
  StepCheckpoints(const StepCheckpoints&) = delete;
  StepCheckpoints& operator=(const StepCheckpoints&) = delete;

  struct Outcome {
    bool stop = false;        // end the run after this step (a checkpoint is committed)
    bool preempted = false;   // ... because of a signal
    int signal = 0;           // the signal that arrived (on any rank)
    double block_ms = -1;     // a save started: time it blocked the step loop
    double total_ms = -1;     // a save committed: its time from start to commit
  };
  // Collective, at the end of step `step`; `stage` builds the state to save;
  // `state_is_finite` (when given) says whether this rank's weights may be saved.
  Outcome end_of_step(int64_t step, bool last, const std::function<checkpoint::State()>& stage,
                      const std::function<bool()>& state_is_finite = {});
  // Before the optimizer changes the parameters and moments: waits until an async save
  // started at an earlier step has copied them (the state is staged by the save's own
  // thread, during the next step's forward and backward). Returns the milliseconds waited
  // at the first update after a save started, -1 otherwise.
  double before_update();

 private:
  bool awaiting_stage_ = false;
  struct Signals;
  const Config& config_;
  parallel::ParallelContext& ctx_;
  int64_t stop_at_step_;
  std::unique_ptr<Signals> signals_;
  checkpoint::Checkpointer checkpointer_;
};

}  // namespace ternion::train

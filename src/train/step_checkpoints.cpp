#include "train/step_checkpoints.h"

#include <atomic>
#include <chrono>
#include <csignal>

namespace ternion::train {

namespace {

// SIGUSR1 (Slurm's --signal) and SIGTERM only set a flag; the step loop acts on it at the
// next step boundary, where every rank agrees.
std::atomic<int> g_preempt_signal{0};

extern "C" void on_preempt_signal(int sig) { g_preempt_signal.store(sig); }

checkpoint::Group group_of(parallel::ParallelContext& ctx) {
  checkpoint::Group g;
  g.rank = ctx.rank;
  g.size = ctx.world->size();
  g.all_true = [&ctx](bool b) { return ctx.world->all_true(b); };
  g.all_gather = [&ctx](const std::string& s) { return ctx.world->all_gather_strings(s); };
  return g;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct StepCheckpoints::Signals {
  Signals() {
    g_preempt_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_preempt_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old_usr1);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~Signals() {
    sigaction(SIGUSR1, &old_usr1, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
  struct sigaction old_usr1 {}, old_term {};
};

bool save_due(int64_t step, int64_t interval, bool last, bool stop) {
  return stop || (interval > 0 && ((step + 1) % interval == 0 || last));
}

StepCheckpoints::StepCheckpoints(const Config& config, parallel::ParallelContext& ctx, int64_t stop_at_step)
    : config_(config),
      ctx_(ctx),
      stop_at_step_(stop_at_step),
      signals_(std::make_unique<Signals>()),
      checkpointer_(config.run.dir, group_of(ctx), {config.checkpoint.async, config.checkpoint.keep}) {}

StepCheckpoints::~StepCheckpoints() = default;

StepCheckpoints::Outcome StepCheckpoints::end_of_step(int64_t step, bool last,
                                                      const std::function<checkpoint::State()>& stage) {
  Outcome o;
  if (auto committed = checkpointer_.poll()) o.total_ms = committed->total_s * 1e3;
  // Every rank must take the same decision: the flag is agreed over the world.
  const int local = g_preempt_signal.load();
  o.preempted = !last && ctx_.world->all_reduce_scalar(local != 0 ? 1.0 : 0.0, parallel::ReduceOp::kMax) > 0;
  o.signal = local;
  o.stop = !last && (stop_at_step_ == step + 1 || o.preempted);
  if (!save_due(step, config_.checkpoint.interval, last, o.stop)) return o;
  const auto t0 = std::chrono::steady_clock::now();
  checkpointer_.save(stage());
  o.block_ms = ms_since(t0);
  if (last || o.stop || !config_.checkpoint.async) {
    if (auto committed = checkpointer_.finish()) o.total_ms = committed->total_s * 1e3;
  }
  return o;
}

}  // namespace ternion::train

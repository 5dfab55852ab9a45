#include "train/step_checkpoints.h"

#include <atomic>
#include <chrono>
#include <csignal>

namespace ternion::train {

namespace {

// SIGUSR1 (Slurm's --signal), SIGTERM and a first SIGINT (Ctrl-C) only set a flag; the
// step loop acts on it at the next step boundary, where every rank agrees. A second
// SIGINT ends the process at once, as Ctrl-C does elsewhere.
std::atomic<int> g_preempt_signal{0};

extern "C" void on_preempt_signal(int sig) {
  if (sig == SIGINT && g_preempt_signal.load() == SIGINT) {
    std::signal(SIGINT, SIG_DFL);  // both async-signal-safe
    std::raise(SIGINT);
    return;
  }
  g_preempt_signal.store(sig);
}

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
    sigaction(SIGINT, &sa, &old_int);
  }
  ~Signals() {
    sigaction(SIGUSR1, &old_usr1, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGINT, &old_int, nullptr);
  }
  struct sigaction old_usr1 {}, old_term {}, old_int {};
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
                                                      const std::function<checkpoint::State()>& stage,
                                                      const std::function<bool()>& state_is_finite) {
  Outcome o;
  if (auto committed = checkpointer_.poll()) o.total_ms = committed->total_s * 1e3;
  // Every rank must take the same decision: the signal (whichever rank got it) is agreed
  // over the world.
  if (!last) o.signal = static_cast<int>(ctx_.world->all_reduce_scalar(g_preempt_signal.load(), parallel::ReduceOp::kMax));
  o.preempted = o.signal != 0;
  o.stop = !last && (stop_at_step_ == step + 1 || o.preempted);
  if (!save_due(step, config_.checkpoint.interval, last, o.stop)) return o;
  // Diverged weights never become the latest checkpoint.
  const bool finite = ctx_.world->all_true(!state_is_finite || state_is_finite());
  TN_CHECK(finite, "train", "the weights are not finite after step ", step + 1,
           "; they are not saved, and the last checkpoint stays the latest. Lower optim.lr (or raise "
           "optim.warmup_steps), then resume from it");
  const auto t0 = std::chrono::steady_clock::now();
  checkpointer_.save(stage());
  o.block_ms = ms_since(t0);
  awaiting_stage_ = config_.checkpoint.async;
  if (last || o.stop || !config_.checkpoint.async) {
    if (auto committed = checkpointer_.finish()) o.total_ms = committed->total_s * 1e3;
    awaiting_stage_ = false;
  }
  return o;
}

double StepCheckpoints::before_update() {
  if (!awaiting_stage_) return -1;
  awaiting_stage_ = false;
  const auto t0 = std::chrono::steady_clock::now();
  checkpointer_.wait_staged();
  return ms_since(t0);
}

}  // namespace ternion::train

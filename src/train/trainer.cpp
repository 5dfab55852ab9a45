#include "train/trainer.h"

#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <ostream>
#include <sstream>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "checkpoint/weights_file.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "data/sampler.h"
#include "data/token_file.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "io/durable.h"
#include "train/gather.h"
#include "train/grad_sync.h"
#include "train/metrics.h"
#include "train/model_shard.h"
#include "train/precision.h"
#include "train/run_lock.h"
#include "train/schedule.h"
#include "train/step_checkpoints.h"
#include "train/train_state.h"
#include "train/update.h"
#include "train/zero.h"

#include <xxhash.h>

namespace ternion::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The CPU's achievable f32 FLOP/s, measured with one sgemm: the peak MFU is stated against.
// On a shared machine one measurement can be low; the trainer keeps the best it sees.
double measure_cpu_peak_flops(int reps = 3) {
  const int n = 512;
  std::vector<float> a(n * n, 1.0f), b(n * n, 0.5f), c(n * n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n);
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0));
  }
  return best;
}

// What the run prints once at start.
void log_start(std::ostream& log, const Config& config, const model::Gpt& gpt, const data::TokenSource& src,
               const data::BatchSampler& sampler, const parallel::ParallelContext& ctx, int64_t accum, double peak) {
  const auto& mc = config.model;
  log << "ternion train: " << gpt.num_parameters() << " parameters, " << mc.n_layer << " layers, " << mc.n_embd
      << " wide, " << mc.n_head << " heads, block " << mc.block_size << "\n"
      << "  data " << config.data.train << ": " << src.size() << " tokens, " << sampler.num_samples()
      << " samples; batch " << config.train.global_batch_size << " x " << mc.block_size
      << " tokens; per data-parallel rank " << accum << " micro-batch(es) of " << config.train.micro_batch_size
      << "\n"
      << ctx.describe_layout() << "  device " << ctx.device.str() << ", precision " << config.precision
      << "; MFU is stated against "
      << (ctx.device.is_cuda() ? "an H100 SXM's dense peak, " : "the best CPU sgemm rate measured in the run, at start ")
      << std::fixed << std::setprecision(1) << peak / 1e9 << " GFLOP/s" << std::endl;
  log.unsetf(std::ios::fixed);
}

// This rank's memory.json entry.
MemoryEntry memory_entry(const model::Gpt& gpt, const OptimizerStep& update, const parallel::ParallelContext& ctx,
                         const ZeroSync* zero, int64_t activations_peak, int64_t peak) {
  MemoryEntry e;
  e.rank = ctx.rank;
  e.coord = ctx.coord;
  if (zero) {  // the flat buffers that last between steps (padding included)
    e.params = zero->param_bytes();
    e.grads = zero->grad_bytes();
  } else {
    for (const auto& p : gpt.parameters()) {
      e.params += static_cast<int64_t>(p.tensor.nbytes());
      const Tensor g = autograd::grad(p.tensor);
      if (g.defined()) e.grads += static_cast<int64_t>(g.nbytes());
    }
  }
  for (const auto& st : const_cast<optim::AdamW&>(update.adamw()).state()) {
    if (st.m.defined()) e.optim += static_cast<int64_t>(st.m.nbytes() + st.v.nbytes());
  }
  e.activations_peak = activations_peak;
  e.peak = peak;
  return e;
}

}  // namespace

parallel::Layout resolve_layout(const Config& config, int world_size) {
  const ParallelConfig& pc = config.parallel;
  const parallel::Layout l = parallel::resolve_layout(pc.dp, pc.tp, pc.pp, pc.order, world_size);
  std::string errors;
  const auto rule = [&](bool ok, const std::string& msg) {
    if (!ok) errors += "\n  " + msg;
  };
  rule(config.model.n_head % l.tp == 0, str_cat("model.n_head = ", config.model.n_head,
                                                " is not divisible by parallel.tp = ", l.tp));
  const ParallelConfig& par = config.parallel;
  const bool interleaved = par.pp_schedule == "interleaved";
  rule(interleaved || par.virtual_stages == 1,
       str_cat("parallel.virtual_stages = ", par.virtual_stages, " needs parallel.pp_schedule: interleaved (",
               par.pp_schedule, " runs one chunk per stage)"));
  if (interleaved && l.pp > 1) {
    const int64_t v = par.virtual_stages, m = config.train.global_batch_size /
                                              std::max<int64_t>(1, config.train.micro_batch_size * l.dp);
    rule(par.pp_layers.empty(), "parallel.pp_layers cannot be given with parallel.pp_schedule: interleaved "
                                "(its chunks are n_layer / (pp · virtual_stages) layers each)");
    rule(config.model.n_layer % (l.pp * v) == 0,
         str_cat("model.n_layer = ", config.model.n_layer, " is not divisible by parallel.pp · parallel.virtual_stages = ",
                 l.pp, " · ", v, " (the interleaved schedule's chunks)"));
    rule(m % l.pp == 0, str_cat("the interleaved schedule needs the micro-batches per step, m = global_batch_size / "
                                "(micro_batch_size · dp) = ", m, ", divisible by parallel.pp = ", l.pp,
                                "; use gpipe or 1f1b, or change the batch sizes"));
  }
  rule(!config.parallel.pp_layers.empty() || config.model.n_layer % l.pp == 0,
       str_cat("model.n_layer = ", config.model.n_layer, " is not divisible by parallel.pp = ", l.pp,
               " (or give each stage's layers in parallel.pp_layers)"));
  rule(config.train.global_batch_size % (config.train.micro_batch_size * l.dp) == 0,
       str_cat("train.global_batch_size = ", config.train.global_batch_size,
               " is not divisible by train.micro_batch_size * dp = ", config.train.micro_batch_size, " * ", l.dp,
               " = ", config.train.micro_batch_size * l.dp));
  rule(config.model.vocab_size >= l.tp, str_cat("model.vocab_size = ", config.model.vocab_size,
                                                 " is smaller than parallel.tp = ", l.tp,
                                                 " (every tp rank holds some vocabulary rows)"));
  rule(!config.parallel.sequence_parallel || l.tp == 1 || config.model.block_size % l.tp == 0,
       str_cat("parallel.sequence_parallel: true splits the tokens over the tensor-parallel group, so "
               "model.block_size = ", config.model.block_size, " must be divisible by parallel.tp = ", l.tp));

  TN_CHECK(errors.empty(), "parallel", "layout ", l.str(), " does not fit this config:", errors);
  return l;
}

uint64_t config_hash(const Config& config) {
  const std::string yaml = to_yaml(config);
  return XXH64(yaml.data(), yaml.size(), 0);
}

TrainSummary train(const Config& config, std::ostream& out, const TrainOptions& options,
                   parallel::ParallelContext* parallel_ctx) {
  validate(config);
  std::unique_ptr<parallel::ParallelContext> own_ctx;
  if (!parallel_ctx) {
    own_ctx = parallel::ParallelContext::single();
    own_ctx->layout = resolve_layout(config, 1);
    parallel_ctx = own_ctx.get();
  }
  parallel::ParallelContext& ctx = *parallel_ctx;
  const parallel::Layout& layout = ctx.layout;
  std::ostream nowhere(nullptr);  // ranks other than 0 stay quiet
  std::ostream& log = ctx.is_main() ? out : nowhere;
  std::ostream& warn = !ctx.is_main() ? nowhere : options.warnings ? *options.warnings : std::cerr;
  // One run per run.dir, and the outputs writable, before any work: rank 0 takes the
  // lock, every rank checks the checkpoint directory it will write to; one rank's problem
  // is every rank's error.
  std::unique_ptr<RunLock> lock;
  {
    std::string problem;
    try {
      if (ctx.is_main()) lock = std::make_unique<RunLock>(config.run.dir);
      check_writable(config.run.dir, "run.dir");
      check_writable((std::filesystem::path(config.run.dir) / "checkpoints").string(), "the checkpoint directory");
    } catch (const Error& e) {
      problem = e.what();
    }
    for (const std::string& p : ctx.world->all_gather_strings(problem))
      if (!p.empty()) throw Error(p);
  }
  const auto& mc = config.model;
  const auto& tc = config.train;
  const Precision precision = resolve_precision(config.precision, ctx.device);

  // Data first: bad paths and sizes fail before any work.
  // .bin shards do not record their vocabulary: their ids are checked against the model's
  // as they are sampled.
  data::TokenSourceOptions source_options;
  source_options.bin_vocab_size = mc.vocab_size;
  std::shared_ptr<data::TokenSource> train_src = data::open_token_source(config.data.train, source_options);
  TN_CHECK(train_src->vocab_size() <= mc.vocab_size, "train", "data.train '", config.data.train,
           "' has vocab_size ", train_src->vocab_size(), " > model.vocab_size ", mc.vocab_size);
  data::SamplerOptions so;
  so.block_size = mc.block_size;
  so.global_batch = tc.global_batch_size;
  so.shuffle = config.data.shuffle;
  so.seed = static_cast<uint64_t>(config.run.seed);
  so.vocab_size = mc.vocab_size;
  data::BatchSampler sampler(train_src, so);
  std::unique_ptr<data::BatchSampler> val_sampler;
  if (!config.data.val.empty()) {
    data::SamplerOptions vo = so;
    vo.shuffle = false;
    vo.global_batch = tc.global_batch_size;
    val_sampler = std::make_unique<data::BatchSampler>(data::open_token_source(config.data.val, source_options), vo);
  }

  // The parts of a step.
  std::unique_ptr<model::Gpt> gpt = build_model(config, ctx, precision.compute);
  // ZeRO moves the parameters into flat buffers: before anything holds them.
  std::unique_ptr<ZeroSync> zero;
  if (config.parallel.zero_stage > 0) zero = std::make_unique<ZeroSync>(config, ctx, *gpt);
  OptimizerStep update(zero ? zero->param_refs() : param_refs(*gpt), config.optim, precision,
                       [&ctx, sharded = zero != nullptr](double local) {
                         // The norm of the whole model: tp and pp ranks (and under ZeRO dp ranks)
                         // hold distinct parts of it.
                         if (sharded) local = ctx.dp->all_reduce_scalar(local, parallel::ReduceOp::kSum);
                         const double tp = ctx.tp->all_reduce_scalar(local, parallel::ReduceOp::kSum);
                         return ctx.pp->all_reduce_scalar(tp, parallel::ReduceOp::kSum);
                       });
  std::unique_ptr<GradSync> replicated_sync;
  if (!zero) replicated_sync = make_grad_sync(config, ctx, *gpt);
  GradSync* const sync = zero ? static_cast<GradSync*>(zero.get()) : replicated_sync.get();
  // Resume before anything is written to run.dir.
  int64_t resume_bytes = 0;
  const int64_t start_step =
      resume(options.resume, config, *gpt, update, sampler, ctx, log, warn, {zero.get(), sync->powersgd()},
             &resume_bytes);
  TN_CHECK(start_step <= tc.steps, "resume", "the checkpoint is at step ", start_step, " but train.steps is ",
           tc.steps, "; raise train.steps to train further");
  TN_CHECK(options.stop_at_step == 0 || (options.stop_at_step > start_step && options.stop_at_step <= tc.steps),
           "train", "--stop-at-step ", options.stop_at_step, " is outside (", start_step, ", ", tc.steps,
           "]: the run starts after step ", start_step, " and ends at train.steps = ", tc.steps);
  const std::unique_ptr<Schedule> schedule = make_schedule(config, ctx, *gpt, sampler);

  const std::filesystem::path metrics_path = std::filesystem::path(config.run.dir) / "metrics.jsonl";
  std::ofstream metrics;
  if (ctx.is_main()) {
    metrics.open(metrics_path, start_step > 0 ? std::ios::app : std::ios::trunc);
    TN_CHECK(metrics.good(), "train", "cannot write metrics to run.dir '", config.run.dir, "'");
  }

  // Data parallel: dp rank r computes samples [r·G/dp, (r+1)·G/dp) of every global batch,
  // in `accum` micro-batches; the gradient average over the group equals the
  // single-process gradient of the whole batch.
  const int64_t per_rank = tc.global_batch_size / layout.dp;
  StepWork work;
  work.first_sample = ctx.coord.dp * per_rank;
  work.micro_batch_size = tc.micro_batch_size;
  work.micro_batches = per_rank / tc.micro_batch_size;
  work.dropout_key = stream_key(static_cast<uint64_t>(config.run.seed), "dropout");
  const int64_t T = mc.block_size;
  const bool on_cuda = ctx.device.is_cuda();
  double peak = on_cuda ? cuda_peak_flops(precision.compute) : measure_cpu_peak_flops();
  auto peak_measured_at = Clock::now();
  log_start(log, config, *gpt, *train_src, sampler, ctx, work.micro_batches, peak);
  if (layout.pp > 1 && work.micro_batches < layout.pp)
    warn << "ternion train: warning: " << work.micro_batches << " micro-batch(es) per step for " << layout.pp
         << " pipeline stages: each stage idles about " << std::fixed << std::setprecision(0)
         << 100.0 * (layout.pp - 1) / static_cast<double>(work.micro_batches + layout.pp - 1)
         << "% of the step; raise train.global_batch_size or lower train.micro_batch_size\n"
         << std::defaultfloat;

  TrainSummary summary;
  summary.start_step = start_step;
  summary.resume_bytes_read = resume_bytes;
  const data::SamplerState sampler_base = sampler.get_state();
  StepCheckpoints checkpoints(config, ctx, options.stop_at_step);
  CommMeter comm(ctx);
  Allocator& allocator = allocator_for(ctx.device);
  size_t run_peak = 0, activations_peak = 0;
  for (int64_t step = start_step; step < tc.steps; ++step) {
    const auto t0 = Clock::now();
    allocator.reset_peak();
    autograd::reset_saved_peak();
    comm.lap();
    StepMetrics m;
    m.step = step;
    m.lr = optim::learning_rate(step, tc.steps, config.optim.warmup_steps, config.optim.lr, config.optim.min_lr,
                                config.optim.schedule);
    if (zero) {
      zero->zero_grads();
    } else {
      for (auto& p : gpt->parameters()) autograd::zero_grad(p.tensor);
    }
    work.step = step;
    work.loss_scale = update.loss_scale();
    sync->begin_step(step);
    m.loss = ctx.dp->all_reduce_scalar(schedule->run(work, *sync), parallel::ReduceOp::kAvg);
    m.comm_ms = sync->wait_ms();
    if (layout.pp > 1) m.pp_idle = schedule->idle_fraction();
    m.ckpt_wait_ms = checkpoints.before_update();  // an async save's copy of the state is done
    const UpdateResult u = update.apply(m.lr);
    if (zero && !u.skipped && !u.nonfinite) {
      zero->after_update();
      m.comm_ms = zero->wait_ms();  // finish()'s waits and the all-gather's
    }
    // Every rank sees the same global norm, so every rank stops here alike.
    TN_CHECK(!u.nonfinite, "train", "the gradient norm is ", u.grad_norm, " at step ", step + 1,
             " (loss ", m.loss, "); the update was not applied and no checkpoint of it is saved. Lower optim.lr, "
             "raise optim.warmup_steps or check the data, then resume from the last checkpoint");
    m.grad_norm = u.grad_norm;
    m.loss_scale = u.loss_scale;
    m.skipped = u.skipped;
    m.skipped_steps = u.skipped_steps;
    const double secs = seconds_since(t0);
    m.ms = secs * 1e3;
    m.tokens_per_sec = static_cast<double>(tc.global_batch_size * T) / secs;
    // Re-measured (about 20 ms) at most every 30 s, so that a start on a busy machine does
    // not inflate MFU for the whole run, at no measurable cost to the step loop.
    if (!on_cuda && seconds_since(peak_measured_at) > 30) {
      peak = std::max(peak, measure_cpu_peak_flops(1));
      peak_measured_at = Clock::now();
    }
    m.mfu = gpt->flops_per_token() * m.tokens_per_sec / (peak * layout.world_size());
    // A step faster than the peak means the peak was measured on a busier machine: measure
    // again, so MFU stays against the best rate seen (it can still pass 100% when the
    // machine is idler during the step than during every measurement).
    if (!on_cuda && m.mfu > 1.0) {
      peak = std::max(peak, measure_cpu_peak_flops(3));
      peak_measured_at = Clock::now();
      m.mfu = gpt->flops_per_token() * m.tokens_per_sec / (peak * layout.world_size());
    }
    double tp_ms = 0;
    m.comm_bytes = comm.lap(&tp_ms);  // the step's traffic, before evaluation and checkpoint votes
    if (layout.tp > 1) m.tp_comm_ms = tp_ms;
    m.mem_peak = allocator.stats().peak_allocated;
    run_peak = std::max(run_peak, m.mem_peak);
    activations_peak = std::max(activations_peak, autograd::saved_stats().peak);
    const bool last = step + 1 == tc.steps;
    if (val_sampler && ((tc.eval_interval > 0 && (step + 1) % tc.eval_interval == 0) || last)) {
      m.val_loss = schedule->evaluate(*val_sampler, tc.eval_batches, work, *ctx.dp);
      summary.final_val_loss = m.val_loss;
    }
    TN_CHECK(std::isfinite(m.loss), "train", "loss is ", m.loss, " at step ", step + 1,
             "; lower optim.lr or check the data");
    const StepCheckpoints::Outcome ck = checkpoints.end_of_step(
        step, last,
        [&] {
          const data::SamplerState next{step + 1,
                                        sampler_base.sample + (step + 1 - sampler_base.step) * tc.global_batch_size};
          return stage_state(config, *gpt, update, step + 1, next, ctx, {zero.get(), sync->powersgd()});
        },
        [&] { return parameters_finite(update.params()); });
    m.ckpt_block_ms = ck.block_ms;
    m.ckpt_total_ms = ck.total_ms;
    m.mem_bytes = allocator.stats().allocated;
    const bool log_now = step == start_step || last || (step + 1) % config.log.interval == 0 || m.skipped ||
                         m.val_loss >= 0 || m.ckpt_block_ms >= 0 || m.ckpt_total_ms >= 0;
    if (log_now) {
      log << log_line(m, {tc.steps, layout.dp > 1, update.scaler().enabled(), update.scaler().scale()});
      log.flush();
      if (ctx.is_main()) {
        metrics << metrics_json(m);
        metrics.flush();
        TN_CHECK(metrics.good(), "train", "cannot write to ", metrics_path.string(), " at step ", step + 1,
                 " (disk full?); the run stops rather than lose its metrics");
      }
    }
    if (options.on_step) options.on_step(m, m.mem_bytes);
    summary.steps.push_back(m);
    if (ck.stop) {
      if (ck.preempted) {
        log << "ternion train: preempted at step " << step + 1 << " (" << strsignal(ck.signal) << ", signal " << ck.signal
            << "); checkpoint committed" << std::endl;
      } else {
        log << "ternion train: stopped after step " << step + 1 << " with a checkpoint; resume with --resume auto"
            << std::endl;
      }
      summary.stopped = true;
      summary.preempted = ck.preempted;
      break;
    }
  }

  if (zero) zero->gather_all();  // stage 3: the whole shard again, for the hashes and model.h5
  for (const auto& p : gpt->parameters()) {
    const Tensor host = p.tensor.to(Device::cpu()).contiguous();
    summary.param_hashes[p.name] = XXH64(host.raw_data(), host.nbytes(), 0);
  }
  // memory.json: every rank's entry, gathered and written by rank 0.
  summary.memory = memory_entry(*gpt, update, ctx, zero.get(), static_cast<int64_t>(activations_peak),
                                static_cast<int64_t>(std::max(run_peak, allocator.stats().peak_allocated)));
  const std::vector<std::string> entries = ctx.world->all_gather_strings(memory_entry_json(summary.memory));
  if (ctx.is_main()) io::write_file_atomically(std::filesystem::path(config.run.dir) / "memory.json", memory_json(entries), "train");
  if (summary.stopped) return summary;

  summary.weights_path = (std::filesystem::path(config.run.dir) / "model.h5").string();
  const std::vector<checkpoint::NamedTensor> whole = gather_whole_weights(*gpt, ctx);
  if (!ctx.is_main()) return summary;
  checkpoint::write_weights(summary.weights_path, whole,
                            {{"vocab_size", mc.vocab_size}, {"block_size", mc.block_size},
                             {"n_layer", mc.n_layer}, {"n_head", mc.n_head}, {"n_embd", mc.n_embd}});
  log << "ternion train: done; weights in " << summary.weights_path << "\n";
  return summary;
}

}  // namespace ternion::train

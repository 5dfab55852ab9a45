#include "train/trainer.h"

#include <cblas.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/format.h"
#include "checkpoint/weights_file.h"
#include "core/allocator.h"
#include "core/rng.h"
#include "data/sampler.h"
#include "data/token_file.h"
#include "model/gpt.h"
#include "optim/adamw.h"
#include "optim/grad_scaler.h"
#include "parallel/data_parallel.h"
#include "train/precision.h"
#include "train/train_state.h"

#include <xxhash.h>

namespace ternion::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

model::GptConfig gpt_config(const Config& c, Device device, DType compute) {
  model::GptConfig g;
  g.device = device;
  g.compute_dtype = compute;
  g.vocab_size = c.model.vocab_size;
  g.block_size = c.model.block_size;
  g.n_layer = c.model.n_layer;
  g.n_head = c.model.n_head;
  g.n_embd = c.model.n_embd;
  g.dropout = c.model.dropout;
  return g;
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

// A micro-batch: the sampler fills the host tensors, upload() copies them to the device
// the model runs on (the same tensors when that is the CPU). The copy is synchronous:
// B·T·8 bytes, 128 KiB for GPT-2 at B=16, against tens of milliseconds of compute.
class BatchBuffer {
 public:
  BatchBuffer(int64_t rows, int64_t T, Device device)
      : idx(Tensor::empty({rows, T}, DType::i32)), tgt(Tensor::empty({rows, T}, DType::i32)),
        dev_idx(device.is_cpu() ? idx : Tensor::empty({rows, T}, DType::i32, device)),
        dev_tgt(device.is_cpu() ? tgt : Tensor::empty({rows, T}, DType::i32, device)) {}
  void upload() {
    if (dev_idx.raw_data() == idx.raw_data()) return;
    dev_idx.copy_(idx);
    dev_tgt.copy_(tgt);
  }
  Tensor idx, tgt;          // [B,T] host
  Tensor dev_idx, dev_tgt;  // [B,T] on the model's device
};

// Mean loss over the first `batches` validation batches; the batches are dealt round-robin
// over the dp group and the per-batch losses summed over it.
double evaluate(const model::Gpt& gpt, data::BatchSampler& val, int64_t batches, int64_t micro,
                parallel::Communicator& dp) {
  autograd::NoGrad no_grad;
  BatchBuffer buf(micro, gpt.config().block_size, gpt.config().device);
  double total = 0;
  for (int64_t b = dp.rank(); b < batches; b += dp.size()) {
    val.fill(b, 0, micro, buf.idx.data<int32_t>(), buf.tgt.data<int32_t>());
    buf.upload();
    total += gpt.loss(buf.dev_idx, buf.dev_tgt).item();
  }
  return dp.all_reduce_scalar(total, parallel::ReduceOp::kSum) / static_cast<double>(batches);
}

std::string json_number(double v) {
  std::ostringstream o;
  o << std::setprecision(8) << v;
  return o.str();
}

void write_metrics(std::ostream& out, const StepMetrics& m, size_t mem) {
  out << std::setprecision(8) << "{\"step\": " << m.step << ", \"loss\": " << m.loss << ", \"lr\": " << m.lr
      << ", \"grad_norm\": " << m.grad_norm << ", \"ms\": " << m.ms
      << ", \"tokens_per_sec\": " << m.tokens_per_sec << ", \"mfu\": " << m.mfu
      << ", \"mem_bytes\": " << mem << ", \"comm_ms\": " << m.comm_ms;
  if (m.loss_scale > 0)
    out << ", \"loss_scale\": " << m.loss_scale << ", \"skipped\": " << (m.skipped ? "true" : "false")
        << ", \"skipped_steps\": " << m.skipped_steps;
  if (m.val_loss >= 0) out << ", \"val_loss\": " << m.val_loss;
  if (m.ckpt_block_ms >= 0) out << ", \"ckpt_block_ms\": " << json_number(m.ckpt_block_ms);
  if (m.ckpt_total_ms >= 0) out << ", \"ckpt_total_ms\": " << json_number(m.ckpt_total_ms);
  out << "}\n";
  out.flush();
}

// Preemption: SIGUSR1 (Slurm's --signal) and SIGTERM only set a flag; the step loop acts
// on it at the next step boundary, where every rank agrees.
std::atomic<int> g_preempt_signal{0};

extern "C" void on_preempt_signal(int sig) { g_preempt_signal.store(sig); }

class PreemptionHandler {
 public:
  PreemptionHandler() {
    g_preempt_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_preempt_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old_usr1_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~PreemptionHandler() {
    sigaction(SIGUSR1, &old_usr1_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  PreemptionHandler(const PreemptionHandler&) = delete;
  PreemptionHandler& operator=(const PreemptionHandler&) = delete;
  int signal() const { return g_preempt_signal.load(); }

 private:
  struct sigaction old_usr1_ {}, old_term_ {};
};

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
  rule(config.model.n_layer % l.pp == 0, str_cat("model.n_layer = ", config.model.n_layer,
                                                 " is not divisible by parallel.pp = ", l.pp));
  rule(config.train.global_batch_size % (config.train.micro_batch_size * l.dp) == 0,
       str_cat("train.global_batch_size = ", config.train.global_batch_size,
               " is not divisible by train.micro_batch_size * dp = ", config.train.micro_batch_size, " * ", l.dp,
               " = ", config.train.micro_batch_size * l.dp));
  rule(l.tp == 1, str_cat("parallel.tp = ", l.tp, ": this build trains data-parallel only (tp must be 1)"));
  rule(l.pp == 1, str_cat("parallel.pp = ", l.pp, ": this build trains data-parallel only (pp must be 1)"));
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
    vo.global_batch = tc.micro_batch_size;
    val_sampler = std::make_unique<data::BatchSampler>(data::open_token_source(config.data.val, source_options), vo);
  }

  model::Gpt gpt(gpt_config(config, ctx.device, precision.compute));
  if (mc.init_from.empty()) {
    gpt.init(static_cast<uint64_t>(config.run.seed));
  } else {
    std::vector<checkpoint::NamedTensor> named;
    for (auto& p : gpt.parameters()) named.push_back({p.name, p.tensor});
    checkpoint::read_weights(mc.init_from, named);
  }
  std::vector<optim::ParamRef> refs;
  for (auto& p : gpt.parameters()) refs.push_back({p.name, p.tensor, p.weight_decay});
  optim::AdamW opt(refs, {config.optim.beta1, config.optim.beta2, config.optim.eps, config.optim.weight_decay});

  // Resume before anything is written to run.dir.
  const int64_t start_step = resume(options.resume, config, gpt, opt, sampler, ctx, log);
  TN_CHECK(start_step <= tc.steps, "resume", "the checkpoint is at step ", start_step, " but train.steps is ",
           tc.steps, "; raise train.steps to train further");

  std::filesystem::create_directories(config.run.dir);
  std::ofstream metrics;
  if (ctx.is_main()) {
    metrics.open(std::filesystem::path(config.run.dir) / "metrics.jsonl", start_step > 0 ? std::ios::app : std::ios::trunc);
    TN_CHECK(metrics.good(), "train", "cannot write metrics to run.dir '", config.run.dir, "'");
  }

  // Data parallel: dp rank r computes samples [r·G/dp, (r+1)·G/dp) of every global batch,
  // in `accum` micro-batches; the gradient average over the group equals the
  // single-process gradient of the whole batch.
  const int64_t dp_rank = ctx.coord.dp;
  const int64_t per_rank = tc.global_batch_size / layout.dp;
  const int64_t accum = per_rank / tc.micro_batch_size;
  const int64_t T = mc.block_size;
  const bool on_cuda = ctx.device.is_cuda();
  double peak = on_cuda ? cuda_peak_flops(precision.compute) : measure_cpu_peak_flops();
  auto peak_measured_at = Clock::now();
  const uint64_t dropout_key = stream_key(static_cast<uint64_t>(config.run.seed), "dropout");
  log << "ternion train: " << gpt.num_parameters() << " parameters, " << mc.n_layer << " layers, "
      << mc.n_embd << " wide, " << mc.n_head << " heads, block " << T << "\n"
      << "  data " << config.data.train << ": " << train_src->size() << " tokens, "
      << sampler.num_samples() << " samples; batch " << tc.global_batch_size << " x " << T
      << " tokens; per data-parallel rank " << accum << " micro-batch(es) of " << tc.micro_batch_size << "\n"
      << ctx.describe_layout() << "  device " << ctx.device.str() << ", precision " << config.precision
      << "; MFU is stated against "
      << (on_cuda ? "an H100 SXM's dense peak, " : "the best CPU sgemm rate measured in the run, at start ")
      << std::fixed
      << std::setprecision(1) << peak / 1e9 << " GFLOP/s" << std::endl;
  log.unsetf(std::ios::fixed);

  TrainSummary summary;
  summary.start_step = start_step;
  const data::SamplerState sampler_base = sampler.get_state();
  checkpoint::Group group;
  group.rank = ctx.rank;
  group.size = ctx.world->size();
  group.all_true = [&ctx](bool b) { return ctx.world->all_true(b); };
  group.all_gather = [&ctx](const std::string& s) { return ctx.world->all_gather_strings(s); };
  checkpoint::Checkpointer checkpointer(config.run.dir, group, {config.checkpoint.async, config.checkpoint.keep});
  std::vector<Tensor> param_tensors;
  for (auto& p : gpt.parameters()) param_tensors.push_back(p.tensor);
  parallel::GradReducer reducer(*ctx.dp, param_tensors, config.parallel.bucket_mb);
  BatchBuffer buf(tc.micro_batch_size, T, ctx.device);
  optim::GradScaler scaler(grad_scaler_options(precision));
  PreemptionHandler preemption;
  const auto agree_any = [&ctx](bool b) {
    return ctx.world->all_reduce_scalar(b ? 1.0 : 0.0, parallel::ReduceOp::kMax) > 0;
  };
  for (int64_t step = start_step; step < tc.steps; ++step) {
    const auto t0 = Clock::now();
    StepMetrics m;
    m.step = step;
    m.lr = optim::learning_rate(step, tc.steps, config.optim.warmup_steps, config.optim.lr,
                                config.optim.min_lr, config.optim.schedule);
    for (auto& p : gpt.parameters()) autograd::zero_grad(p.tensor);
    for (int64_t micro = 0; micro < accum; ++micro) {
      const int64_t first = dp_rank * per_rank + micro * tc.micro_batch_size;
      sampler.fill(step, first, tc.micro_batch_size, buf.idx.data<int32_t>(), buf.tgt.data<int32_t>());
      buf.upload();
      Tensor loss = gpt.loss(buf.dev_idx, buf.dev_tgt, dropout_key, static_cast<uint64_t>(step), first);
      m.loss += loss.item() / static_cast<double>(accum);
      reducer.begin_backward(micro + 1 == accum);
      // scaler.scale() is 1 without loss scaling: the gradient of mean-over-micro-batches.
      autograd::backward(autograd::scale(loss, scaler.scale() / static_cast<double>(accum)));
    }
    reducer.finish();
    m.comm_ms = reducer.stats().wait_ms;
    m.loss = ctx.dp->all_reduce_scalar(m.loss, parallel::ReduceOp::kAvg);
    // Gradients are dp-averaged, so every rank sees the same norm and takes the same
    // skip decision.
    scaler.unscale(refs);
    m.grad_norm = optim::clip_grad_norm(refs, config.optim.grad_clip);
    if (scaler.enabled()) m.loss_scale = scaler.scale();
    m.skipped = !scaler.update(m.grad_norm);
    m.skipped_steps = scaler.skipped_steps();
    if (!m.skipped) opt.step(m.lr);
    const double secs = seconds_since(t0);
    m.ms = secs * 1e3;
    m.tokens_per_sec = static_cast<double>(tc.global_batch_size * T) / secs;
    // Re-measured (about 20 ms) at most every 30 s, so that a start on a busy machine does
    // not inflate MFU for the whole run, at no measurable cost to the step loop.
    if (!on_cuda && seconds_since(peak_measured_at) > 30) {
      peak = std::max(peak, measure_cpu_peak_flops(1));
      peak_measured_at = Clock::now();
    }
    m.mfu = gpt.flops_per_token() * m.tokens_per_sec / (peak * layout.world_size());
    const bool last = step + 1 == tc.steps;
    if (val_sampler && ((tc.eval_interval > 0 && (step + 1) % tc.eval_interval == 0) || last)) {
      m.val_loss = evaluate(gpt, *val_sampler, tc.eval_batches, tc.micro_batch_size, *ctx.dp);
      summary.final_val_loss = m.val_loss;
    }
    if (auto committed = checkpointer.poll()) m.ckpt_total_ms = committed->total_s * 1e3;
    const int64_t ci = config.checkpoint.interval;
    // Every rank must take the same decision: the flag is agreed over the world.
    const bool preempted = !last && agree_any(preemption.signal() != 0);
    const bool stop = !last && (options.stop_at_step == step + 1 || preempted);
    if ((ci > 0 && ((step + 1) % ci == 0 || last)) || stop) {
      const auto c0 = Clock::now();
      const data::SamplerState next{step + 1, sampler_base.sample + (step + 1 - sampler_base.step) * tc.global_batch_size};
      checkpointer.save(stage_state(config, gpt, opt, step + 1, next, ctx));
      m.ckpt_block_ms = seconds_since(c0) * 1e3;
      if (last || stop || !config.checkpoint.async) {
        if (auto committed = checkpointer.finish()) m.ckpt_total_ms = committed->total_s * 1e3;
      }
    }
    const bool log_now = step == start_step || last || (step + 1) % config.log.interval == 0 || m.skipped ||
                         m.val_loss >= 0 || m.ckpt_block_ms >= 0 || m.ckpt_total_ms >= 0;
    const size_t mem = allocator_for(ctx.device).stats().allocated;
    if (log_now) {
      log << "step " << std::setw(5) << step + 1 << "/" << tc.steps << " | loss " << std::fixed
          << std::setprecision(4) << m.loss;
      if (m.val_loss >= 0) log << " | val " << m.val_loss;
      log << " | lr " << std::scientific << std::setprecision(2) << m.lr << std::fixed
          << " | grad norm " << std::setprecision(3) << m.grad_norm << " | " << std::setprecision(1)
          << m.ms << " ms | " << std::setprecision(0) << m.tokens_per_sec << " tok/s | MFU "
          << std::setprecision(1) << 100 * m.mfu << "% | mem " << mem / 1048576.0 << " MiB";
      if (layout.dp > 1) log << " | comm wait " << m.comm_ms << " ms";
      if (m.skipped) log << " | skipped: inf/nan gradients, loss scale now " << scaler.scale();
      if (scaler.enabled() && m.skipped_steps > 0) log << " | " << m.skipped_steps << " skipped";
      if (m.ckpt_block_ms >= 0) log << " | ckpt save blocked " << m.ckpt_block_ms << " ms";
      if (m.ckpt_total_ms >= 0) log << " | ckpt committed in " << m.ckpt_total_ms << " ms";
      log << "\n";
      log.unsetf(std::ios::fixed | std::ios::scientific);
      log.flush();
      if (ctx.is_main()) write_metrics(metrics, m, mem);
    }
    if (options.on_step) options.on_step(m, mem);
    TN_CHECK(std::isfinite(m.loss), "train", "loss is ", m.loss, " at step ", step + 1,
             "; lower optim.lr or check the data");
    summary.steps.push_back(m);
    if (stop) {
      if (preempted) {
        log << "ternion train: preempted at step " << step + 1 << " (signal " << preemption.signal()
            << "); checkpoint committed" << std::endl;
      } else {
        log << "ternion train: stopped after step " << step + 1 << " with a checkpoint; resume with --resume auto"
            << std::endl;
      }
      summary.stopped = true;
      summary.preempted = preempted;
      return summary;
    }
  }

  summary.weights_path = (std::filesystem::path(config.run.dir) / "model.h5").string();
  if (!ctx.is_main()) return summary;
  std::vector<checkpoint::NamedTensor> named;
  for (auto& p : gpt.parameters()) named.push_back({p.name, p.tensor});
  checkpoint::write_weights(summary.weights_path, named,
                            {{"vocab_size", mc.vocab_size}, {"block_size", mc.block_size},
                             {"n_layer", mc.n_layer}, {"n_head", mc.n_head}, {"n_embd", mc.n_embd}});
  log << "ternion train: done; weights in " << summary.weights_path << "\n";
  return summary;
}

}  // namespace ternion::train

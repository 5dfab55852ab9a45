// `ternion train --config FILE [--set key=value]...` and `ternion prepare`.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/prepare.h"
#include "monitor/server.h"
#include "parallel/context.h"
#include "parallel/runtime.h"
#include "train/config.h"
#include "train/trainer.h"

namespace ternion::cli {
namespace {

// With monitor.port set, world rank 0 serves /metrics, fed by every step through on_step
// (the other ranks would report the same global values). nullptr when off or not rank 0.
// Throws Error when the port cannot be bound.
std::unique_ptr<monitor::MetricsServer> start_monitor(const train::Config& config, int rank,
                                                      train::TrainOptions& options) {
  if (config.monitor.port == 0 || rank != 0) return nullptr;
  auto server = std::make_unique<monitor::MetricsServer>(config.monitor.port);
  std::cout << "ternion train: metrics at http://0.0.0.0:" << server->port() << "/metrics"
            << std::endl;
  options.on_step = [s = server.get(), snap = monitor::Snapshot{}](const train::StepMetrics& m,
                                                                   size_t memory_bytes) mutable {
    snap.step = m.step + 1;
    snap.loss = m.loss;
    if (m.val_loss >= 0) snap.val_loss = m.val_loss;
    snap.tokens_per_second = m.tokens_per_sec;
    snap.mfu = m.mfu;
    snap.learning_rate = m.lr;
    snap.grad_norm = m.grad_norm;
    snap.memory_bytes = memory_bytes;
    if (m.ckpt_block_ms >= 0) snap.checkpoint_block_ms = m.ckpt_block_ms;
    if (m.ckpt_total_ms >= 0) snap.checkpoint_total_ms = m.ckpt_total_ms;
    snap.comm_ms = m.comm_ms;
    s->update(snap);
  };
  return server;
}

}  // namespace

int run_train(int argc, char** argv) {
  Args args(argc, argv, {"config", "resume", "stop-at-step"}, {"set"});
  train::Config config = train::load_config(args.required("config"), args.all("set"));
  train::TrainOptions options;
  options.resume = args.get("resume", "auto");
  options.stop_at_step = static_cast<int64_t>(args.number("stop-at-step", 0));

  // Every rank has read and validated the config; now find our place in the job and
  // check the layout before any communicator exists (every rank reports the same error).
  parallel::Runtime& runtime = parallel::Runtime::init();
  const parallel::Layout layout = train::resolve_layout(config, runtime.size());
  if (runtime.size() == 1) {
    const auto metrics_server = start_monitor(config, runtime.rank(), options);
    train::train(config, std::cout, options);
    return 0;
  }
  // From here a failure on one rank must end every rank, never leave them waiting.
  try {
    const auto metrics_server = start_monitor(config, runtime.rank(), options);
    auto ctx = parallel::ParallelContext::create(runtime, layout);
    const std::string hash = std::to_string(train::config_hash(config));
    const std::vector<std::string> hashes = ctx->world->all_gather_strings(hash);
    std::string differ;
    for (size_t r = 0; r < hashes.size(); ++r)
      if (hashes[r] != hashes[0]) differ += (differ.empty() ? "" : ",") + std::to_string(r);
    TN_CHECK(differ.empty(), "parallel", "ranks ", differ, " resolved a different config than rank 0 "
             "(different config file, --set overrides or version on some nodes?)");
    if (ctx->is_main()) std::cout << "ternion train: " << ctx->describe_rank() << std::endl;
    train::train(config, std::cout, options, ctx.get());
    ctx->world->barrier();
  } catch (const std::exception& e) {
    parallel::fatal(std::string("train: ") + e.what());
  }
  return 0;
}

int run_prepare(int argc, char** argv) {
  Args args(argc, argv, {"input", "output", "val-output", "val-fraction"});
  const std::string input = args.required("input");
  const std::string output = args.required("output");
  std::string val = args.get("val-output");
  if (val.empty()) {
    const auto dot = output.rfind(".h5");
    val = (dot == std::string::npos ? output : output.substr(0, dot)) + "_val.h5";
  }
  const double frac = args.number("val-fraction", 0.1);
  int last_pct = -1;
  auto progress = [&](int64_t done, int64_t total) {
    const int pct = total ? static_cast<int>(100 * done / total) : 100;
    if (pct == last_pct) return;
    last_pct = pct;
    std::fprintf(stderr, "\rprepare: [%-40.*s] %3d%%", pct * 40 / 100,
                 "########################################", pct);
    if (done == total) std::fputc('\n', stderr);
  };
  data::PrepareStats s = data::prepare_text(input, output, val, frac, progress);
  std::printf("prepare: %lld bytes -> %lld train tokens in %s, %lld val tokens in %s\n",
              static_cast<long long>(s.input_bytes), static_cast<long long>(s.train_tokens),
              output.c_str(), static_cast<long long>(s.val_tokens), val.c_str());
  return 0;
}

}  // namespace ternion::cli

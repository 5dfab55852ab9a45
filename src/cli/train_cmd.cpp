// `ternion train --config FILE [--set key=value]...` and `ternion prepare`.
#include <cstdio>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/prepare.h"
#include "parallel/context.h"
#include "parallel/runtime.h"
#include "train/config.h"
#include "train/trainer.h"

namespace ternion::cli {

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
    train::train(config, std::cout, options);
    return 0;
  }
  // From here a failure on one rank must end every rank, never leave them waiting.
  try {
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

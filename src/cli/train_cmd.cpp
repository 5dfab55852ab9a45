// `ternion train --config FILE [--set key=value]...` and `ternion prepare`.
#include <cstdio>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "data/prepare.h"
#include "train/config.h"
#include "train/trainer.h"

namespace ternion::cli {

int run_train(int argc, char** argv) {
  Args args(argc, argv, {"config", "resume", "stop-at-step"}, {"set"});
  train::Config config = train::load_config(args.required("config"), args.all("set"));
  train::TrainOptions options;
  options.resume = args.get("resume", "auto");
  options.stop_at_step = static_cast<int64_t>(args.number("stop-at-step", 0));
  train::train(config, std::cout, options);
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

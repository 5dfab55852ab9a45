// The ternion command: one binary, one subcommand per job. Only main() exits.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: ternion <command> [options]\n"
    "\n"
    "commands:\n"
    "  train          train a model: --config FILE [--set key=value]... [--resume auto|none|DIR]\n"
    "  prepare        tokenize a text file into HDF5 token files: --input TXT --output FILE.h5\n"
    "  sample         generate text from trained weights: --checkpoint FILE.h5 --prompt TEXT\n"
    "  checkpoint     inspect a checkpoint (verifying checksums) or export its weights:\n"
    "                 checkpoint inspect DIR | checkpoint export DIR --output model.h5\n"
    "  plot           draw a run's loss, throughput and learning rate as PNGs (gnuplot):\n"
    "                 plot RUN_DIR [--output DIR]\n"
    "  version        print the versions of Ternion and its libraries (also --version)\n"
    "  selftest       run a tiny forward/backward on the CPU backend and report timing\n"
    "\n"
    "Run 'ternion <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  try {
    if (cmd == "--version" || cmd == "version") return ternion::cli::run_version(argc - 1, argv + 1);
    if (cmd == "train") return ternion::cli::run_train(argc - 1, argv + 1);
    if (cmd == "prepare") return ternion::cli::run_prepare(argc - 1, argv + 1);
    if (cmd == "sample") return ternion::cli::run_sample(argc - 1, argv + 1);
    if (cmd == "checkpoint") return ternion::cli::run_checkpoint(argc - 1, argv + 1);
    if (cmd == "plot") return ternion::cli::run_plot(argc - 1, argv + 1);
    if (cmd == "selftest") return ternion::cli::run_selftest(argc - 1, argv + 1);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "ternion: unknown command '%s'\n\n%s", argv[1], kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ternion %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}

// The ternion command: one binary, one subcommand per job. Only main() exits.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "cli/args.h"
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
    "  plan           per-rank memory, traffic and step time of a config at N ranks; --search\n"
    "                 ranks the layouts that fit: plan --config C.yaml --world N\n"
    "                 [--device-memory 80GiB] [--search] [--set k=v] [--json]\n"
    "  version        print the versions of Ternion and its libraries (also --version)\n"
    "  selftest       run a tiny forward/backward on the CPU backend and report timing\n"
    "\n"
    "Run 'ternion <command> --help' for a command's options.\n";

struct Command {
  std::string_view name;
  int (*run)(int argc, char** argv);
  const char* usage;
};

const Command kCommands[] = {
    {"train", ternion::cli::run_train, ternion::cli::kTrainUsage},
    {"prepare", ternion::cli::run_prepare, ternion::cli::kPrepareUsage},
    {"sample", ternion::cli::run_sample, ternion::cli::kSampleUsage},
    {"checkpoint", ternion::cli::run_checkpoint, ternion::cli::kCheckpointUsage},
    {"plot", ternion::cli::run_plot, ternion::cli::kPlotUsage},
    {"plan", ternion::cli::run_plan, ternion::cli::kPlanUsage},
    {"version", ternion::cli::run_version, ternion::cli::kVersionUsage},
    {"--version", ternion::cli::run_version, ternion::cli::kVersionUsage},
    {"selftest", ternion::cli::run_selftest, ternion::cli::kSelftestUsage},
};

const Command* find_command(std::string_view name) {
  for (const Command& c : kCommands)
    if (c.name == name) return &c;
  return nullptr;
}

// --help among the words before the first option (`checkpoint inspect --help`, `plot RUN
// --help`); one after an option is found by Args, which knows which words are values.
bool help_before_options(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    if (ternion::cli::is_help(argv[i])) return true;
    if (argv[i][0] == '-') return false;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // A write past the file size limit (ulimit -f) fails with EFBIG, reported like a full
  // disk, instead of killing the process with SIGXFSZ mid-save.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const Command* command = find_command(cmd);
  if (command == nullptr) {
    std::fprintf(stderr, "ternion: unknown command '%s'\n\n%s", argv[1], kUsage);
    return 2;
  }
  if (help_before_options(argc, argv)) {
    std::fputs(command->usage, stdout);
    return 0;
  }
  try {
    return command->run(argc - 1, argv + 1);
  } catch (const ternion::cli::HelpRequested&) {
    std::fputs(command->usage, stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ternion %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}

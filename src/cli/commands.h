// Subcommands of the ternion binary. Each takes (argc, argv) with argv[0] the command
// name, returns the process exit code, and throws ternion::Error on failure.
#pragma once

namespace ternion::cli {

int run_version(int argc, char** argv);
int run_selftest(int argc, char** argv);
int run_train(int argc, char** argv);
int run_prepare(int argc, char** argv);
int run_sample(int argc, char** argv);
int run_checkpoint(int argc, char** argv);
int run_plot(int argc, char** argv);
int run_plan(int argc, char** argv);

// What `ternion NAME --help` prints on stdout (usage.cpp). main() answers --help for
// every command, before the command runs or when its Args throws HelpRequested.
extern const char* const kTrainUsage;
extern const char* const kPrepareUsage;
extern const char* const kSampleUsage;
extern const char* const kCheckpointUsage;
extern const char* const kPlotUsage;
extern const char* const kPlanUsage;
extern const char* const kVersionUsage;
extern const char* const kSelftestUsage;

}  // namespace ternion::cli

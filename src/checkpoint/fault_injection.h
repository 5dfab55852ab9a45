// Test fake of RankFileHooks: a rank file whose k-th dataset fails, whose file is torn
// after writing, or whose datasets are slow to write. Header-only; tests only.
//
//   auto faults = std::make_shared<FaultInjection>();
//   Checkpointer ck(run_dir, group, {.async = true, .keep = 2, .hooks = faults});
//   faults->fail_at = 1;   // the next save fails at its second dataset
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "core/error.h"

namespace ternion::checkpoint {

// Set the fields between saves (they are read by the writer thread of the save in flight).
class FaultInjection : public RankFileHooks {
 public:
  int fail_at = -1;         // throw before writing dataset fail_at (0-based)
  bool torn_write = false;  // truncate the file to half its size once written
  double delay_s = 0;       // sleep before each dataset (holds a save in flight)

  std::vector<std::string> written;  // names passed to before_dataset, in order
  std::atomic<int> files{0};         // after_file calls

  void before_dataset(const std::string& path, int index, const std::string& name) override {
    if (delay_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
    TN_CHECK(index != fail_at, "checkpoint", "injected failure writing '", name, "' to '", path, "'");
    written.push_back(name);
  }
  void after_file(const std::string& path) override {
    ++files;
    if (torn_write) std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  }
};

}  // namespace ternion::checkpoint

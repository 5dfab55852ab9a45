// One run per run.dir: world rank 0 holds an exclusive lock on <run.dir>/.lock for the
// whole run (flock(2) on a file holding the holder's host and pid). The kernel drops the
// lock when its process dies, so the file a killed run leaves behind is stale and simply
// taken over; a live holder makes a second run stop at once with a message naming it.
#pragma once

#include <string>

namespace ternion::train {

class RunLock {
 public:
  // Takes the lock on `run_dir`/.lock (creating both). Throws Error naming the directory
  // and the holder ("host H, pid P") when another process holds it, or naming the system's
  // reason when the directory cannot be written.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();  // releases it
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static constexpr const char* kFile = ".lock";

 private:
  int fd_ = -1;
};

// Checks that `dir` (created when missing) accepts new files: creates and removes a probe
// file. Throws Error naming the directory, the config key and the system's reason.
void check_writable(const std::string& dir, const std::string& key);

}  // namespace ternion::train

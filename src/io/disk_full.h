// Test helper: a full disk without root. While a DiskFull is alive, no file of this process
// can grow beyond `bytes` (RLIMIT_FSIZE), and SIGXFSZ is ignored so that such a write fails
// with EFBIG instead of killing the process, the way ENOSPC fails it on a full disk.
// Header-only; tests only.
//
//   { io::DiskFull full(4096); EXPECT_THROW(write_something_big(), Error); }
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdint>

namespace ternion::io {

class DiskFull {
 public:
  explicit DiskFull(int64_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit_), 0);
    rlimit lowered = old_limit_;
    lowered.rlim_cur = static_cast<rlim_t>(bytes);
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &lowered), 0);
  }
  ~DiskFull() {
    ::setrlimit(RLIMIT_FSIZE, &old_limit_);  // the soft limit may rise back to the hard one
    std::signal(SIGXFSZ, old_handler_);
  }
  DiskFull(const DiskFull&) = delete;
  DiskFull& operator=(const DiskFull&) = delete;

 private:
  rlimit old_limit_{};
  void (*old_handler_)(int) = SIG_DFL;
};

}  // namespace ternion::io

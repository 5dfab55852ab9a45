#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ternion::train {

namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  TN_CHECK(!ec, "train", "cannot create run.dir '", run_dir, "': ", ec.message());
  const std::string path = (fs::path(run_dir) / kFile).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  TN_CHECK(fd_ >= 0, "train", "cannot write the lock file '", path, "' in run.dir: ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    std::ifstream in(path);
    std::getline(in, holder);
    ::close(fd_);
    fd_ = -1;
    TN_CHECK(err != EWOULDBLOCK, "train", "run.dir '", run_dir, "' is in use by another run (",
             holder.empty() ? std::string("holder unknown") : holder, "; lock file ", path,
             "). Wait for it to end, or give this run another run.dir");
    fail("train", str_cat("cannot lock '", path, "': ", std::strerror(err)));
  }
  std::ostringstream who;
  who << "host " << host_name() << ", pid " << ::getpid();
  const std::string text = who.str() + "\n";
  // Best effort: the lock itself is what guards the directory; the text names the holder.
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t n = ::pwrite(fd_, text.data(), text.size(), 0);
    (void)n;
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // The holder's line goes with the lock; the file stays (removing it could let two runs
  // lock two different files).
  const bool cleared = ::ftruncate(fd_, 0) == 0;  // best effort, as when it was written
  (void)cleared;
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

void check_writable(const std::string& dir, const std::string& key) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  TN_CHECK(!ec, "train", "cannot create ", key, " '", dir, "': ", ec.message());
  const fs::path probe = fs::path(dir) / (".write_probe." + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TN_CHECK(fd >= 0, "train", key, " '", dir, "' is not writable: ", std::strerror(errno),
           "; training would fail at the first save");
  ::close(fd);
  fs::remove(probe, ec);
}

}  // namespace ternion::train

#include "train/run_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / (std::string(name) + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

// A second holder is refused with a message naming the first (flock locks are per open
// file description, so this holds within one process too).
TEST(RunLock, SecondRunIsRefusedNamingTheHolder) {
  const fs::path d = temp_dir("ternion_lock_");
  {
    RunLock first(d.string());
    try {
      RunLock second(d.string());
      FAIL() << "two holders";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("is in use by another run (host "), std::string::npos) << m;
      EXPECT_NE(m.find("pid " + std::to_string(::getpid())), std::string::npos) << m;
    }
  }
  RunLock again(d.string());  // released with its holder
  fs::remove_all(d);
}

// A lock file left by a process that died holds no lock: it is taken over.
TEST(RunLock, StaleLockFileIsTakenOver) {
  const fs::path d = temp_dir("ternion_stale_");
  fs::create_directories(d);
  std::ofstream(d / RunLock::kFile) << "host elsewhere, pid 999999\n";
  RunLock lock(d.string());
  std::ifstream in(d / RunLock::kFile);
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("pid " + std::to_string(::getpid())), std::string::npos) << line;
  fs::remove_all(d);
}

TEST(RunLock, UnwritableDirectoryIsNamed) {
  const fs::path d = temp_dir("ternion_notadir_");
  std::ofstream(d.string()) << "a file where a directory should be";
  try {
    check_writable((d / "checkpoints").string(), "the checkpoint directory");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the checkpoint directory '" + (d / "checkpoints").string()),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(RunLock((d / "run").string()), Error);
  fs::remove(d);
}

}  // namespace
}  // namespace ternion::train

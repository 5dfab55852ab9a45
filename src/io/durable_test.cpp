#include "io/durable.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"

namespace ternion::io {
namespace {

namespace fs = std::filesystem;

class DurableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_io_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  fs::path dir_;
};

TEST_F(DurableTest, WriteFileAtomicallyReplacesAndLeavesNoTmp) {
  const fs::path p = dir_ / "latest";
  write_file_atomically(p, "step_00000001\n", "test");
  write_file_atomically(p, "step_00000002\n", "test");
  EXPECT_EQ(slurp(p), "step_00000002\n");
  EXPECT_FALSE(fs::exists(tmp_path(p)));
  EXPECT_EQ(tmp_path(p).filename(), "latest.tmp");
}

TEST_F(DurableTest, FailedWriteKeepsThePreviousFile) {
  const fs::path p = dir_ / "f";
  write_file_atomically(p, "old", "test");
  fs::create_directories(tmp_path(p) / "blocker");  // the tmp path cannot be opened as a file
  try {
    write_file_atomically(p, "new", "save");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[save] cannot write '"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(p), "old");
}

TEST_F(DurableTest, PublishMovesFilesAndDirectories) {
  const fs::path tmp = dir_ / "w.h5.tmp";
  std::ofstream(tmp) << "data";
  publish(tmp, dir_ / "w.h5", "test");
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(slurp(dir_ / "w.h5"), "data");

  fs::create_directories(dir_ / "step_1.tmp");
  std::ofstream(dir_ / "step_1.tmp" / "manifest.yaml") << "x";
  publish(dir_ / "step_1.tmp", dir_ / "step_1", "test");
  EXPECT_TRUE(fs::exists(dir_ / "step_1" / "manifest.yaml"));
  EXPECT_FALSE(fs::exists(dir_ / "step_1.tmp"));
}

TEST_F(DurableTest, ErrorsNameTheOperationAndPath) {
  const fs::path missing = dir_ / "nope";
  try {
    publish(missing, dir_ / "there", "export");
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("[export] cannot open '"), std::string::npos) << what;
    EXPECT_NE(what.find("nope"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(dir_ / "there"));
  EXPECT_THROW(fsync_path(dir_ / "f", true, "test"), Error);  // not a directory
  fsync_path(dir_, true, "test");
}

}  // namespace
}  // namespace ternion::io

#include "io/paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "core/error.h"

namespace ternion::io {
namespace {

namespace fs = std::filesystem;

class PathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_paths_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "ckpt");
    std::ofstream(dir_ / "corpus.txt") << "text";
    std::ofstream(dir_ / "ckpt" / "rank_00000.h5") << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The error text of refuse_output_over_inputs(output, inputs), or "" when it accepts.
  static std::string refusal(const fs::path& output, const std::vector<fs::path>& inputs) {
    try {
      refuse_output_over_inputs(output, inputs, "prepare");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(PathsTest, TheInputItselfIsRefusedWhateverItsSpelling) {
  const fs::path in = dir_ / "corpus.txt";
  EXPECT_EQ(refusal(in, {in}),
            "[prepare] refusing to write '" + in.string() + "': it is the input '" + in.string() + "'");
  EXPECT_NE(refusal(dir_ / "ckpt" / ".." / "corpus.txt", {in}), "");
  EXPECT_NE(refusal(dir_ / "." / "corpus.txt", {in}), "");
  fs::create_symlink(in, dir_ / "link.txt");
  EXPECT_NE(refusal(dir_ / "link.txt", {in}), "");  // writing through the link overwrites the input
  fs::create_hard_link(in, dir_ / "hard.txt");
  EXPECT_NE(refusal(dir_ / "hard.txt", {in}), "");
  fs::create_directory_symlink(dir_, dir_ / "again");
  EXPECT_NE(refusal(dir_ / "again" / "corpus.txt", {in}), "");
}

TEST_F(PathsTest, AnythingInsideAnInputDirectoryIsRefused) {
  const fs::path ckpt = dir_ / "ckpt";
  const std::string what = refusal(ckpt / "rank_00000.h5", {ckpt});
  EXPECT_EQ(what, "[prepare] refusing to write '" + (ckpt / "rank_00000.h5").string() +
                      "': it is inside the input directory '" + ckpt.string() + "'");
  EXPECT_NE(refusal(ckpt / "new" / "model.h5", {ckpt}), "");  // not there yet, still inside
  EXPECT_NE(refusal(ckpt, {ckpt}), "");
  EXPECT_NE(refusal(dir_ / "ckpt/", {ckpt}), "");
  fs::create_directory_symlink(ckpt, dir_ / "ckpt_link");
  EXPECT_NE(refusal(dir_ / "ckpt_link" / "model.h5", {ckpt}), "");
}

TEST_F(PathsTest, TheTemporaryFileBesideTheOutputCountsToo) {
  std::ofstream(dir_ / "corpus.h5.tmp") << "not a temporary file";
  EXPECT_NE(refusal(dir_ / "corpus.h5", {dir_ / "corpus.h5.tmp"}), "");
}

TEST_F(PathsTest, OtherOutputsAreAccepted) {
  EXPECT_EQ(refusal(dir_ / "corpus.h5", {dir_ / "corpus.txt"}), "");
  EXPECT_EQ(refusal(dir_ / "ckpt2" / "model.h5", {dir_ / "ckpt"}), "");  // a sibling that shares the prefix
  EXPECT_EQ(refusal(dir_ / "model.h5", {dir_ / "ckpt"}), "");            // beside the input directory
  EXPECT_EQ(refusal(dir_ / "model.h5", {}), "");
}

}  // namespace
}  // namespace ternion::io

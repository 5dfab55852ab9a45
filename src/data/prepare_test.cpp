#include "data/prepare.h"

#include <gtest/gtest.h>

#include <hdf5.h>

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "data/test_util.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "io/disk_full.h"

namespace ternion::data {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<int32_t> read_all(TokenSource& src) {
  std::vector<int32_t> out(static_cast<size_t>(src.size()));
  src.read(0, src.size(), out.data());
  return out;
}

TEST(Prepare, SplitsTextIntoTrainAndVal) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Line " + std::to_string(i) + ": all the world's a stage\n";
  const std::string input = dir.file("input.txt");
  std::ofstream(input, std::ios::binary) << text;

  std::vector<std::pair<int64_t, int64_t>> calls;
  const PrepareStats stats = prepare_text(
      input, dir.file("train.h5"), dir.file("val.h5"), 0.1,
      [&](int64_t done, int64_t total) { calls.emplace_back(done, total); }, /*chunk_bytes=*/97);

  const auto n = static_cast<int64_t>(text.size());
  const int64_t n_val = n / 10;  // floor(0.1 * n)
  EXPECT_EQ(stats.input_bytes, n);
  EXPECT_EQ(stats.val_tokens, n_val);
  EXPECT_EQ(stats.train_tokens, n - n_val);

  auto train = open_token_source(dir.file("train.h5"));
  auto val = open_token_source(dir.file("val.h5"));
  EXPECT_EQ(train->vocab_size(), 256);
  EXPECT_EQ(train->tokenizer(), "byte");
  ByteTokenizer tok;
  EXPECT_EQ(tok.decode(read_all(*train)), text.substr(0, size_t(n - n_val)));
  EXPECT_EQ(tok.decode(read_all(*val)), text.substr(size_t(n - n_val)));

  ASSERT_EQ(calls.size(), size_t((n + 96) / 97));
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, n);
    if (i > 0) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, n);
}

TEST(Prepare, ZeroValFractionGivesEmptyVal) {
  TempDir dir;
  const std::string input = dir.file("in.txt");
  std::ofstream(input) << "hello";
  const PrepareStats stats = prepare_text(input, dir.file("t.h5"), dir.file("v.h5"), 0.0);
  EXPECT_EQ(stats.train_tokens, 5);
  EXPECT_EQ(stats.val_tokens, 0);
  EXPECT_EQ(open_token_source(dir.file("v.h5"))->size(), 0);
}

TEST(Prepare, ErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = dir.file("missing.txt");
  expect_error([&] { prepare_text(missing, dir.file("t.h5"), dir.file("v.h5"), 0.1); },
               {"no such file", missing});
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.h5")));

  const std::string empty = dir.file("empty.txt");
  std::ofstream(empty).flush();
  expect_error([&] { prepare_text(empty, dir.file("t.h5"), dir.file("v.h5"), 0.1); },
               {"empty", empty});

  const std::string input = dir.file("in.txt");
  std::ofstream(input) << "hello";
  expect_error([&] { prepare_text(input, dir.file("t.h5"), dir.file("v.h5"), 1.0); },
               {"val_fraction 1"});
  expect_error([&] { prepare_text(input, dir.file("t.h5"), dir.file("t.h5"), 0.5); },
               {"same file"});
  expect_error([&] { prepare_text(input, dir.file("no_dir/t.h5"), dir.file("v.h5"), 0.5); },
               {"cannot create", "no_dir/t.h5.tmp"});
}

// An output that is the input (or a link to it) is refused before anything is written.
TEST(Prepare, RefusesToOverwriteItsInput) {
  TempDir dir;
  const std::string input = dir.file("in.txt");
  std::ofstream(input) << "hello";
  expect_error([&] { prepare_text(input, input, dir.file("v.h5"), 0.1); },
               {"refusing to write '" + input + "': it is the input '" + input + "'"});
  expect_error([&] { prepare_text(input, dir.file("t.h5"), input, 0.1); }, {"refusing to write", input});
  std::filesystem::create_symlink(input, dir.file("link.h5"));
  expect_error([&] { prepare_text(input, dir.file("link.h5"), dir.file("v.h5"), 0.1); },
               {"refusing to write '" + dir.file("link.h5") + "': it is the input '" + input + "'"});
  std::ifstream in(input);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "hello");
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("v.h5")));
}

// A disk that fills while preparing: the error names the file and the reason, nothing is
// left half-written (no train file, no .tmp) and no HDF5 file stays open.
TEST(Prepare, FullDiskLeavesNoTmpFiles) {
  TempDir dir;
  const std::string input = dir.file("in.txt");
  std::ofstream(input) << std::string(300000, 'x');
  {
    io::DiskFull full(128 * 1024);
    expect_error([&] { prepare_text(input, dir.file("t.h5"), dir.file("v.h5"), 0.1); },
                 {"cannot write '", dir.file("t.h5.tmp"), "File too large"});
  }
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.h5.tmp")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("v.h5.tmp")));
}

}  // namespace
}  // namespace ternion::data

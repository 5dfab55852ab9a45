// read_tensor: a box of a global tensor from datasets written under any layout; gaps and
// disagreeing overlaps are refused, naming the tensor and the box.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "core/error.h"

namespace ternion::checkpoint {
namespace {

namespace fs = std::filesystem;

class ReadTensorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_read_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Element (i, j) of the [R, C] global tensor is 10 i + j.
  static float value(int64_t i, int64_t j) { return static_cast<float>(10 * i + j); }
  // Dataset `dataset` holding box rows [r0, r1) x cols [c0, c1) of a [R, C] tensor.
  static Entry piece(const std::string& dataset, const Shape& global, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    Entry e;
    e.name = dataset;
    e.data = Tensor::empty({r1 - r0, c1 - c0});
    for (int64_t i = r0; i < r1; ++i)
      for (int64_t j = c0; j < c1; ++j) e.data.data<float>()[(i - r0) * (c1 - c0) + (j - c0)] = value(i, j);
    e.global_shape = global;
    e.offsets = {r0, c0};
    return e;
  }
  // Saves the entries as one rank's file and returns the committed checkpoint's manifest.
  Manifest save(std::vector<Entry> entries) {
    State s;
    s.step = 1;
    s.tensors = std::move(entries);
    Checkpointer ck(dir_.string(), Group::local(), {.async = false, .keep = 1});
    ck.save(std::move(s));
    return read_manifest(latest_checkpoint(dir_.string()));
  }
  static void expect_box(const Tensor& out, int64_t r0, int64_t c0) {
    const int64_t rows = out.shape()[0], cols = out.shape()[1];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        ASSERT_EQ(out.data<float>()[i * cols + j], value(r0 + i, c0 + j)) << "at (" << r0 + i << ", " << c0 + j << ")";
  }
  static std::string error_of(const Manifest& m, const std::string& name, const Shape& global,
                              const std::vector<int64_t>& offsets, Tensor out) {
    try {
      read_tensor(m, name, global, offsets, out);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(ReadTensorTest, TwoDatasetsOfTheSameRowsDoNotMakeAWholeTensor) {
  // Their sizes add up to the tensor's, but rows 2..3 were never written.
  const Shape g{4, 2};
  const Manifest m = save({piece("param/w@0", g, 0, 2, 0, 2), piece("param/w@1", g, 0, 2, 0, 2)});
  const std::string what = error_of(m, "param/w", g, {0, 0}, Tensor::empty(g));
  EXPECT_NE(what.find("does not cover tensor 'param/w' [0:4, 0:2]"), std::string::npos) << what;
  EXPECT_NE(what.find("4 of its 8 elements are in no dataset, the first of them in [2:4, 0:2]"), std::string::npos)
      << what;
  // The rows both hold can be read: they agree.
  Tensor top = Tensor::empty({2, 2});
  read_tensor(m, "param/w", g, {0, 0}, top);
  expect_box(top, 0, 0);
}

TEST_F(ReadTensorTest, AGapNamesTheFirstMissingBox) {
  // Column 3 of row 1 is missing.
  const Shape g{3, 4};
  const Manifest m = save({piece("param/w@0", g, 0, 1, 0, 4), piece("param/w@1", g, 1, 2, 0, 3),
                           piece("param/w@2", g, 2, 3, 0, 4)});
  const std::string what = error_of(m, "param/w", g, {0, 0}, Tensor::empty(g));
  EXPECT_NE(what.find("1 of its 12 elements are in no dataset, the first of them in [1:2, 3:4]"), std::string::npos)
      << what;
  // A box that avoids the gap reads.
  Tensor left = Tensor::empty({3, 3});
  read_tensor(m, "param/w", g, {0, 0}, left);
  expect_box(left, 0, 0);
}

TEST_F(ReadTensorTest, OverlappingDatasetsMustAgree) {
  const Shape g{4, 2};
  Entry low = piece("param/w@0", g, 0, 3, 0, 2), high = piece("param/w@1", g, 2, 4, 0, 2);
  {
    const Manifest m = save({low, high});  // row 2 in both, equal: a replica
    Tensor out = Tensor::empty(g, DType::f64);
    read_tensor(m, "param/w", g, {0, 0}, out);
    EXPECT_EQ(out.to(DType::f32).to_vector<float>(), (std::vector<float>{0, 1, 10, 11, 20, 21, 30, 31}));
  }
  high.data.data<float>()[1] += 0.5f;  // element (2, 1) differs
  const Manifest m = save({low, high});
  const std::string what = error_of(m, "param/w", g, {0, 0}, Tensor::empty(g));
  EXPECT_NE(what.find("tensor 'param/w' is stored twice over [2:3, 0:2] with different values"), std::string::npos)
      << what;
  EXPECT_NE(what.find("rank_00000.h5"), std::string::npos) << what;
}

TEST_F(ReadTensorTest, ABoxOfOneLayoutFromTheDatasetsOfAnother) {
  // Written by two tensor-parallel ranks as column halves; read as row blocks.
  const Shape g{6, 4};
  {
    const Manifest m = save({piece("param/w@0", g, 0, 6, 0, 2), piece("param/w@1", g, 0, 6, 2, 4)});
    Tensor rows = Tensor::empty({3, 4});
    read_tensor(m, "param/w", g, {2, 0}, rows);
    expect_box(rows, 2, 0);
    Tensor inner = Tensor::empty({3, 2});
    read_tensor(m, "param/w", g, {1, 1}, inner);
    expect_box(inner, 1, 1);
  }
  // Written as two shards of three row ranges each (the q, k, v rows of c_attn), read as
  // one block that straddles them all.
  const Manifest m = save({piece("param/w@0", g, 0, 1, 0, 4), piece("param/w@1", g, 2, 3, 0, 4),
                           piece("param/w@2", g, 4, 5, 0, 4), piece("param/w@3", g, 1, 2, 0, 4),
                           piece("param/w@4", g, 3, 4, 0, 4), piece("param/w@5", g, 5, 6, 0, 4)});
  Tensor block = Tensor::empty({4, 3});
  read_tensor(m, "param/w", g, {1, 1}, block);
  expect_box(block, 1, 1);
}

TEST_F(ReadTensorTest, ScalarsAndBadRequests) {
  const Shape g{4, 2};
  const Manifest m = save({whole("optim/s", Tensor::scalar(3.5)), piece("param/w", g, 0, 4, 0, 2)});
  Tensor s = Tensor::empty({});
  read_tensor(m, "optim/s", {}, {}, s);
  EXPECT_EQ(s.item(), 3.5);
  EXPECT_NE(error_of(m, "param/w", g, {3, 0}, Tensor::empty({2, 2})).find("bad request"), std::string::npos);
  EXPECT_NE(error_of(m, "param/w", g, {0}, Tensor::empty({2})).find("bad request"), std::string::npos);
  EXPECT_NE(error_of(m, "param/nope", g, {0, 0}, Tensor::empty(g)).find("has no tensor 'param/nope'"),
            std::string::npos);
}

}  // namespace
}  // namespace ternion::checkpoint

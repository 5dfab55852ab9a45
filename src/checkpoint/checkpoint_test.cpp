#include "checkpoint/checkpoint.h"

#include <gtest/gtest.h>

#include <barrier>
#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoint/fault_injection.h"
#include "checkpoint/format.h"
#include "core/error.h"
#include "io/disk_full.h"
#include "io/h5.h"

namespace ternion::checkpoint {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_ckpt_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string run_dir() const { return dir_.string(); }

  static Tensor iota(const Shape& s, float base) {
    Tensor t = Tensor::empty(s, DType::f32);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = base + static_cast<float>(i);
    return t;
  }
  static State state(int64_t step) {
    State s;
    s.step = step;
    s.tensors.push_back(whole("param/a.weight", iota({3, 4}, static_cast<float>(step))));
    s.tensors.push_back(whole("param/a.bias", iota({4}, 100.0f + static_cast<float>(step))));
    s.tensors.push_back(whole("optim/exp_avg/a.weight", iota({3, 4}, -1.0f)));
    s.scalars["optim.step"] = step;
    s.scalars["data.sample"] = 7;
    s.config_yaml = "model:\n  n_layer: 1\n";
    s.layout["dp"] = "1";
    return s;
  }
  fs::path dir_;
};

TEST_F(CheckpointTest, SaveCommitLoadRoundTrip) {
  for (bool async : {false, true}) {
    fs::remove_all(dir_);
    Checkpointer ck(run_dir(), Group::local(), {async, 2});
    ck.save(state(10));
    auto timing = ck.finish();
    if (async) {
      ASSERT_TRUE(timing.has_value());
    }
    const std::string latest = latest_checkpoint(run_dir());
    EXPECT_EQ(fs::path(latest).filename(), "step_00000010");
    Manifest m = read_manifest(latest);
    EXPECT_EQ(m.step, 10);
    EXPECT_EQ(m.scalars.at("data.sample"), 7);
    EXPECT_EQ(m.layout.at("dp"), "1");
    EXPECT_EQ(m.config_yaml, "model:\n  n_layer: 1\n");
    EXPECT_EQ(verify(m), 3);
    Tensor w = Tensor::empty({3, 4}, DType::f32);
    read_tensor(m, "param/a.weight", {3, 4}, {0, 0}, w);
    EXPECT_EQ(w.to_vector<float>(), iota({3, 4}, 10).to_vector<float>());
    // A slice request: rows 1..2, columns 2..3.
    Tensor part = Tensor::empty({2, 2}, DType::f32);
    read_tensor(m, "param/a.weight", {3, 4}, {1, 2}, part);
    EXPECT_EQ(part.to_vector<float>(), (std::vector<float>{16, 17, 20, 21}));
  }
}

// N ranks as N threads of this process: collectives through a shared barrier.
class ThreadGroups {
 public:
  explicit ThreadGroups(int n) : n_(n), barrier_(n), bools_(n), strings_(n) {}
  Group group(int rank) {
    Group g;
    g.rank = rank;
    g.size = n_;
    g.all_true = [this, rank](bool b) {
      bools_[rank] = b;
      barrier_.arrive_and_wait();
      bool all = true;
      for (bool x : bools_) all = all && x;
      barrier_.arrive_and_wait();
      return all;
    };
    g.all_gather = [this, rank](const std::string& s) {
      strings_[rank] = s;
      barrier_.arrive_and_wait();
      std::vector<std::string> out = strings_;
      barrier_.arrive_and_wait();
      return out;
    };
    return g;
  }

 private:
  int n_;
  std::barrier<> barrier_;
  std::vector<char> bools_;
  std::vector<std::string> strings_;
};

TEST_F(CheckpointTest, AssemblesATensorFromShardsOfSeveralRanks) {
  // Two ranks each hold two rows of a [4,2] tensor; rank 2 holds nothing but votes.
  Tensor full = iota({4, 2}, 0);
  ThreadGroups groups(3);
  std::vector<std::thread> ranks;
  std::vector<std::string> errors(3);
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back([&, r] {
      try {
        State s;
        s.step = 5;
        if (r < 2) {
          Entry e;
          e.name = "param/w";
          e.data = full.slice(0, 2 * r, 2 * r + 2).contiguous();
          e.global_shape = {4, 2};
          e.offsets = {2 * r, 0};
          s.tensors.push_back(e);
        }
        Checkpointer ck(run_dir(), groups.group(r), {true, 2});
        ck.save(std::move(s));
        ck.finish();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (const auto& e : errors) ASSERT_EQ(e, "");
  Manifest m = read_manifest(latest_checkpoint(run_dir()));
  EXPECT_EQ(m.world_size, 3);
  ASSERT_EQ(m.tensors.size(), 2u);
  EXPECT_EQ(m.file_bytes.size(), 2u);
  Tensor out = Tensor::empty({4, 2}, DType::f32);
  read_tensor(m, "param/w", {4, 2}, {0, 0}, out);
  EXPECT_EQ(out.to_vector<float>(), full.to_vector<float>());
  Tensor mid = Tensor::empty({2, 2}, DType::f32);  // straddles both shards
  read_tensor(m, "param/w", {4, 2}, {1, 0}, mid);
  EXPECT_EQ(mid.to_vector<float>(), (std::vector<float>{2, 3, 4, 5}));
  // Losing one rank's file is an error naming it.
  fs::remove(fs::path(m.dir) / "rank_00001.h5");
  try {
    read_manifest(m.dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing rank file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank_00001.h5"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, KeepDeletesOlderOnlyAfterCommit) {
  Checkpointer ck(run_dir(), Group::local(), {true, 2});
  for (int64_t step : {1, 2, 3, 4}) {
    ck.save(state(step));
    ck.finish();
  }
  const auto all = complete_checkpoints(run_dir());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::path(all[0]).filename(), "step_00000004");
  EXPECT_EQ(fs::path(all[1]).filename(), "step_00000003");
}

TEST_F(CheckpointTest, StaleTmpDirectoriesAreRemoved) {
  fs::create_directories(fs::path(run_dir()) / "checkpoints" / "step_00000099.tmp");
  Checkpointer ck(run_dir(), Group::local(), {false, 2});
  ck.save(state(1));
  EXPECT_FALSE(fs::exists(fs::path(run_dir()) / "checkpoints" / "step_00000099.tmp"));
}

TEST_F(CheckpointTest, FailedWriteLeavesLatestIntact) {
  auto faults = std::make_shared<FaultInjection>();
  Checkpointer ck(run_dir(), Group::local(), {.async = true, .keep = 2, .hooks = faults});
  ck.save(state(1));
  ck.finish();
  faults->fail_at = 1;
  ck.save(state(2));
  try {
    ck.finish();
    FAIL() << "expected the failed save to throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("injected failure writing 'param/a.bias'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not committed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000001");
  EXPECT_EQ(verify(read_manifest(latest_checkpoint(run_dir()))), 3);
  EXPECT_EQ(complete_checkpoints(run_dir()).size(), 1u);
}

// A disk that fills during a save: the save fails naming the file and the reason, every
// HDF5 file is closed (HDF5 1.10 crashes at exit over a file it failed to close), the
// partial directory is removed and the last checkpoint still verifies.
TEST_F(CheckpointTest, FullDiskFailsTheSaveAndClosesEveryFile) {
  for (const bool async : {true, false}) {
    SCOPED_TRACE(async ? "async" : "sync");
    fs::remove_all(dir_);
    Checkpointer ck(run_dir(), Group::local(), {.async = async, .keep = 2});
    ck.save(state(1));
    ck.finish();
    State big = state(2);
    big.tensors.push_back(whole("param/big", iota({1000, 200}, 0.0f)));  // 800 kB
    {
      io::DiskFull full(256 * 1024);
      try {
        ck.save(std::move(big));
        ck.finish();
        FAIL() << "expected the save to fail";
      } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("save of step 2 failed"), std::string::npos) << what;
        EXPECT_NE(what.find("cannot write '"), std::string::npos) << what;
        EXPECT_NE(what.find("rank_00000.h5' at byte "), std::string::npos) << what;
        EXPECT_NE(what.find(": File too large"), std::string::npos) << what;
      }
    }
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    EXPECT_FALSE(fs::exists(fs::path(run_dir()) / "checkpoints" / "step_00000002.tmp"));
    EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000001");
    EXPECT_EQ(verify(read_manifest(latest_checkpoint(run_dir()))), 3);
    // With space again, the next save commits.
    ck.save(state(3));
    ck.finish();
    EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000003");
  }
}

TEST_F(CheckpointTest, ShortWriteIsNotCommitted) {
  auto faults = std::make_shared<FaultInjection>();
  Checkpointer ck(run_dir(), Group::local(), {.async = false, .keep = 2, .hooks = faults});
  ck.save(state(1));
  faults->torn_write = true;
  try {
    ck.save(state(2));
    FAIL() << "expected the torn save to throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("short write of '"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000001");
  EXPECT_EQ(verify(read_manifest(latest_checkpoint(run_dir()))), 3);
}

TEST_F(CheckpointTest, HooksSeeEveryDatasetInOrderAndTheFileOnce) {
  auto hooks = std::make_shared<FaultInjection>();
  Checkpointer ck(run_dir(), Group::local(), {.async = true, .keep = 2, .hooks = hooks});
  ck.save(state(1));
  ck.finish();
  EXPECT_EQ(hooks->written,
            (std::vector<std::string>{"param/a.weight", "param/a.bias", "optim/exp_avg/a.weight"}));
  EXPECT_EQ(hooks->files.load(), 1);
  // A rank with nothing to write creates no file.
  State empty;
  empty.step = 2;
  ck.save(std::move(empty));
  ck.finish();
  EXPECT_EQ(hooks->files.load(), 1);
}

TEST_F(CheckpointTest, OneRankFailingFailsTheSaveEverywhere) {
  // This rank wrote fine, but another rank reports failure in the vote.
  Group g = Group::local();
  g.size = 2;
  auto votes = std::make_shared<int>(0);
  g.all_true = [votes](bool b) { return ++*votes <= 2 ? b : false; };  // the commit vote fails
  g.all_gather = [](const std::string& s) {
    return std::vector<std::string>{s, "[checkpoint] disk full on rank 1"};
  };
  Checkpointer ck(run_dir(), Group::local(), {false, 2});
  ck.save(state(1));
  Checkpointer bad(run_dir(), g, {false, 2});
  try {
    bad.save(state(2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("disk full on rank 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000001");
}

TEST_F(CheckpointTest, AsyncSaveBlocksOnlyForHandOff) {
  auto slow = std::make_shared<FaultInjection>();
  slow->delay_s = 0.05;
  Checkpointer ck(run_dir(), Group::local(), {.async = true, .keep = 2, .hooks = slow});
  ck.save(state(1));
  EXPECT_FALSE(ck.poll().has_value());  // still writing (3 tensors x 50 ms)
  auto t = ck.finish();
  ASSERT_TRUE(t.has_value());
  EXPECT_LT(t->blocking_s, 0.05);
  EXPECT_GT(t->total_s, 0.1);
  EXPECT_EQ(fs::path(latest_checkpoint(run_dir())).filename(), "step_00000001");
}

class DamageTest : public CheckpointTest {
 protected:
  std::string saved() {
    Checkpointer ck(run_dir(), Group::local(), {false, 2});
    ck.save(state(3));
    return latest_checkpoint(run_dir());
  }
};

TEST_F(DamageTest, FlippedBytesNameFileAndTensor) {
  const std::string dir = saved();
  const fs::path file = fs::path(dir) / "rank_00000.h5";
  // Flip every byte of the data: find a.bias's values (100..103 as f32) and change one.
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  const float v = 104.0f;  // a.bias = 103, 104, ... at step 3
  const std::string needle(reinterpret_cast<const char*>(&v), sizeof v);
  const size_t pos = bytes.find(needle);
  ASSERT_NE(pos, std::string::npos);
  f.seekp(static_cast<std::streamoff>(pos));
  f.put(static_cast<char>(bytes[pos] ^ 0x40));
  f.close();
  Manifest m = read_manifest(dir);
  try {
    verify(m);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("checksum mismatch for tensor 'param/a.bias'"), std::string::npos) << what;
    EXPECT_NE(what.find("rank_00000.h5"), std::string::npos) << what;
  }
}

TEST_F(DamageTest, TruncatedMissingAndUnknownVersion) {
  const std::string dir = saved();
  const fs::path file = fs::path(dir) / "rank_00000.h5";
  const auto size = fs::file_size(file);
  fs::copy_file(file, fs::path(run_dir()) / "keep.h5");
  fs::resize_file(file, size - 100);
  EXPECT_THROW(
      {
        try {
          read_manifest(dir);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("rank_00000.h5' is truncated"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  fs::remove(file);
  try {
    read_manifest(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing rank file"), std::string::npos) << e.what();
  }
  fs::copy_file(fs::path(run_dir()) / "keep.h5", file);
  EXPECT_EQ(verify(read_manifest(dir)), 3);
  // An unknown format version.
  const fs::path manifest = fs::path(dir) / "manifest.yaml";
  std::ifstream in(manifest);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  in.close();
  const size_t pos = text.find("format_version: 1");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 17, "format_version: 7");
  std::ofstream(manifest) << text;
  try {
    read_manifest(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown format version 7"), std::string::npos) << e.what();
  }
}

TEST_F(DamageTest, WrongModelShapeIsNamed) {
  Manifest m = read_manifest(saved());
  Tensor w = Tensor::empty({4, 4}, DType::f32);
  try {
    read_tensor(m, "param/a.weight", {4, 4}, {0, 0}, w);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'param/a.weight'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_tensor(m, "param/nope", {4}, {0}, w), Error);
}

}  // namespace
}  // namespace ternion::checkpoint

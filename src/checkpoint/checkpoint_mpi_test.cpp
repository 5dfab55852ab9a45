// Multi-rank save and restore under mpirun, over the real MPI communicator: every rank
// writes its row block of a global tensor; every rank reassembles any slice; a rank whose
// write fails makes the whole save fail on every rank and `latest` keeps naming the last
// good checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint/checkpoint.h"
#include "checkpoint/fault_injection.h"
#include "core/error.h"
#include "parallel/mpi_test_main.h"

namespace ternion::checkpoint {
namespace {

namespace fs = std::filesystem;

parallel::Communicator* g_world = nullptr;
std::string g_dir;

Group world_group() {
  Group g;
  g.rank = g_world->rank();
  g.size = g_world->size();
  g.all_true = [](bool b) { return g_world->all_true(b); };
  g.all_gather = [](const std::string& s) { return g_world->all_gather_strings(s); };
  return g;
}

constexpr int64_t kRowsPerRank = 3, kCols = 5;

float value(int64_t row, int64_t col, int64_t step) { return static_cast<float>(step * 1000 + row * 10 + col); }

// This rank's rows of the [world*3, 5] tensor "param/w" at `step`, plus a whole tensor
// written by rank 0 only.
State state_at(int64_t step) {
  const int r = g_world->rank();
  State s;
  s.step = step;
  s.scalars["data.step"] = step;
  s.layout = {{"dp", std::to_string(g_world->size())}};
  Entry e;
  e.name = "param/w";
  e.data = Tensor::empty({kRowsPerRank, kCols});
  for (int64_t i = 0; i < kRowsPerRank; ++i)
    for (int64_t j = 0; j < kCols; ++j) e.data.data<float>()[i * kCols + j] = value(r * kRowsPerRank + i, j, step);
  e.global_shape = {g_world->size() * kRowsPerRank, kCols};
  e.offsets = {r * kRowsPerRank, 0};
  s.tensors.push_back(e);
  if (r == 0) s.tensors.push_back(whole("param/b", Tensor::full({7}, static_cast<double>(step))));
  return s;
}

TEST(CheckpointMpi, RanksWriteShardsAndEveryRankReassemblesAnySlice) {
  const std::string run = g_dir + "/shards";
  for (bool async : {true, false}) {
    Checkpointer ck(run, world_group(), {async, 2});
    ck.save(state_at(async ? 10 : 20));
    ck.finish();
  }
  const int n = g_world->size();
  const Manifest m = read_manifest(latest_checkpoint(run));
  EXPECT_EQ(m.step, 20);
  EXPECT_EQ(m.world_size, n);
  EXPECT_EQ(static_cast<int>(m.file_bytes.size()), n);
  EXPECT_EQ(verify(m), n + 1);
  // A slice that straddles two ranks' blocks, read by every rank.
  const int64_t row0 = kRowsPerRank - 1, rows = std::min<int64_t>(3, n * kRowsPerRank - row0);
  Tensor out = Tensor::empty({rows, 2});
  read_tensor(m, "param/w", {n * kRowsPerRank, kCols}, {row0, 2}, out);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(out.data<float>()[i * 2 + j], value(row0 + i, 2 + j, 20));
  Tensor b = Tensor::empty({7});
  read_tensor(m, "param/b", {7}, {0}, b);
  EXPECT_EQ(b.data<float>()[6], 20.0f);
  g_world->barrier();
}

TEST(CheckpointMpi, OneRankFailingItsWriteFailsTheSaveEverywhereAndKeepsLatest) {
  const std::string run = g_dir + "/fault";
  {
    Checkpointer ck(run, world_group(), {false, 2});
    ck.save(state_at(1));
  }
  const std::string good = latest_checkpoint(run);
  EXPECT_FALSE(good.empty());
  const int victim = g_world->size() - 1;
  auto faults = std::make_shared<FaultInjection>();
  if (g_world->rank() == victim) faults->fail_at = 0;
  bool threw = false;
  try {
    Checkpointer ck(run, world_group(), {.async = true, .keep = 2, .hooks = faults});
    ck.save(state_at(2));
    ck.finish();
  } catch (const Error& e) {
    threw = true;
  }
  EXPECT_TRUE(threw) << "rank " << g_world->rank() << " did not see the failed save";
  EXPECT_EQ(latest_checkpoint(run), good);
  EXPECT_EQ(read_manifest(good).step, 1);
  g_world->barrier();
}

}  // namespace
}  // namespace ternion::checkpoint

// Job-wide set-up, run on every rank by the shared MPI test main (parallel/mpi_test_main.h)
// before the tests: the world, and one directory for the job named by rank 0.
namespace {

class CheckpointMpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    using namespace ternion;
    parallel::Communicator& world = parallel::testing::world();
    checkpoint::g_world = &world;
    std::string dir = (std::filesystem::temp_directory_path() / ("ternion_ckpt_mpi_" + std::to_string(::getpid()))).string();
    checkpoint::g_dir = world.all_gather_strings(dir)[0];
    if (world.rank() == 0) std::filesystem::remove_all(checkpoint::g_dir);
    world.barrier();
  }
  void TearDown() override {
    using namespace ternion;
    checkpoint::g_world->barrier();  // every rank is done with the directory
    if (checkpoint::g_world->rank() == 0) std::filesystem::remove_all(checkpoint::g_dir);
    checkpoint::g_world = nullptr;
  }
};

::testing::Environment* const kEnvironment = ::testing::AddGlobalTestEnvironment(new CheckpointMpiEnvironment);

}  // namespace

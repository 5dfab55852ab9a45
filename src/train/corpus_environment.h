// Job-wide set-up shared by the MPI training tests: one temporary directory every rank
// uses (named by rank 0), holding a small token corpus `train.h5` (vocab 64, ids < 40, a
// repeating pattern with variation), created before the tests and removed after them.
//   std::string g_dir;
//   ::testing::Environment* const kEnv =
//       ::testing::AddGlobalTestEnvironment(new CorpusEnvironment("ternion_pp_", &g_dir));
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "parallel/mpi_test_main.h"

namespace ternion::train {

class CorpusEnvironment : public ::testing::Environment {
 public:
  // *dir receives the directory's path on every rank at SetUp.
  CorpusEnvironment(std::string prefix, std::string* dir) : prefix_(std::move(prefix)), dir_(dir) {}
  void SetUp() override {
    namespace fs = std::filesystem;
    parallel::Communicator& world = parallel::testing::world();
    const std::string mine = (fs::temp_directory_path() / (prefix_ + std::to_string(::getpid()))).string();
    *dir_ = world.all_gather_strings(mine)[0];
    if (world.rank() == 0) {
      fs::remove_all(*dir_);
      fs::create_directories(*dir_);
      std::vector<int32_t> tokens;
      for (int i = 0; i < 8000; ++i) tokens.push_back((i * 7 + (i / 13) % 5) % 40);
      data::write_token_file((fs::path(*dir_) / "train.h5").string(), tokens, 64, "test");
    }
    world.barrier();
  }
  void TearDown() override {
    parallel::testing::world().barrier();  // every rank is done with the directory
    if (parallel::testing::world().rank() == 0) std::filesystem::remove_all(*dir_);
  }

 private:
  std::string prefix_;
  std::string* dir_;
};

}  // namespace ternion::train

// Every file in configs/ loads and validates, and holds to what a ready-to-run config
// promises: a comment saying what it is and how to run it, its own run.dir, and a batch
// that splits evenly into micro-batches over its data-parallel ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "train/config.h"

namespace ternion::train {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> config_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(TERNION_SOURCE_DIR) / "configs"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Configs, EveryFileLoadsAndValidates) {
  const auto files = config_files();
  ASSERT_GE(files.size(), 3u) << "configs/ should hold the tiny CPU and the GPT-2 configs";
  std::map<std::string, std::string> run_dirs;
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    Config c;
    ASSERT_NO_THROW(c = load_config(f.string())) << "config does not load";
    EXPECT_EQ(parse_config(to_yaml(c), "resolved"), c) << "does not survive to_yaml";

    std::ifstream in(f);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("# ", 0), 0u) << "should open with a comment saying what it trains";

    const auto [it, fresh] = run_dirs.emplace(c.run.dir, f.filename().string());
    EXPECT_TRUE(fresh) << "run.dir " << c.run.dir << " is also " << it->second << "'s";

    const int dp = c.parallel.dp > 0 ? c.parallel.dp : 1;
    EXPECT_EQ(c.train.global_batch_size % (c.train.micro_batch_size * dp), 0)
        << "global_batch_size " << c.train.global_batch_size << " is not a multiple of micro_batch_size "
        << c.train.micro_batch_size << " x dp " << dp;
  }
}

TEST(Configs, Gpt2On8GpusIsTheOneGpuRecipeSpreadOver8Ranks) {
  const std::string dir = std::string(TERNION_SOURCE_DIR) + "/configs/";
  Config one = load_config(dir + "gpt2-124m.yaml");
  Config eight = load_config(dir + "gpt2-124m-8gpu.yaml");
  EXPECT_EQ(eight.parallel.dp * eight.parallel.tp * eight.parallel.pp, 8);
  EXPECT_EQ(eight.model, one.model);
  EXPECT_EQ(eight.optim, one.optim);
  // Same tokens per optimizer step: the loss curves compare step for step.
  EXPECT_EQ(eight.train.global_batch_size, one.train.global_batch_size);
  EXPECT_EQ(eight.train.steps, one.train.steps);
}

}  // namespace
}  // namespace ternion::train

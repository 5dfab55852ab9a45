#include "train/metrics.h"

#include <gtest/gtest.h>

#include <limits>

#include "../../tests/reference/mini_json.h"

namespace ternion::train {
namespace {

using ternion::testing::Json;

TEST(Metrics, JsonLineHasTheContractFields) {
  StepMetrics m;
  m.step = 7;
  m.loss = 2.5;
  m.comm_bytes = {1000, 20, 3};
  m.mem_peak = 123456;
  m.mem_bytes = 100;
  const std::string line = metrics_json(m);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  const Json j = Json::parse(line);
  EXPECT_EQ(j["step"].number, 7);
  EXPECT_EQ(j["comm_bytes"]["dp"].number, 1000);
  EXPECT_EQ(j["comm_bytes"]["tp"].number, 20);
  EXPECT_EQ(j["comm_bytes"]["pp"].number, 3);
  EXPECT_EQ(j["mem_peak"].number, 123456);
  EXPECT_FALSE(j.has("val_loss"));  // not evaluated
}

// NaN and infinity are not JSON: they are written as null.
TEST(Metrics, NonFiniteNumbersAreNull) {
  StepMetrics m;
  m.loss = std::numeric_limits<double>::quiet_NaN();
  m.grad_norm = std::numeric_limits<double>::infinity();
  m.val_loss = std::numeric_limits<double>::quiet_NaN();
  const std::string line = metrics_json(m);
  EXPECT_EQ(line.find("nan"), std::string::npos) << line;
  EXPECT_EQ(line.find("inf"), std::string::npos) << line;
  const Json j = Json::parse(line);
  EXPECT_EQ(j["loss"].kind, Json::Kind::null);
  EXPECT_EQ(j["grad_norm"].kind, Json::Kind::null);
  EXPECT_EQ(j["val_loss"].kind, Json::Kind::null);
}

TEST(Metrics, MemoryJsonListsEveryRank) {
  MemoryEntry a{.rank = 0, .coord = {0, 0, 0}, .params = 10, .grads = 10, .optim = 20, .activations_peak = 5, .peak = 60};
  MemoryEntry b = a;
  b.rank = 1;
  b.coord = {1, 0, 0};
  const Json j = Json::parse(memory_json({memory_entry_json(a), memory_entry_json(b)}));
  ASSERT_EQ(j["ranks"].array.size(), 2u);
  for (const char* key : {"rank", "dp", "tp", "pp", "params", "grads", "optim", "activations_peak", "peak"})
    EXPECT_TRUE(j["ranks"][1].has(key)) << key;
  EXPECT_EQ(j["ranks"][1]["dp"].number, 1);
  EXPECT_EQ(j["ranks"][0]["optim"].number, 20);
}

TEST(Metrics, CommMeterOfOneProcessCountsNothing) {
  auto ctx = parallel::ParallelContext::single();
  CommMeter meter(*ctx);
  ctx->dp->all_reduce_scalar(1.0, parallel::ReduceOp::kSum);
  const CommBytes b = meter.lap();
  EXPECT_EQ(b.dp + b.tp + b.pp, 0);
}

}  // namespace
}  // namespace ternion::train

#include "monitor/prometheus.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

namespace ternion::monitor {
namespace {

// Sample lines of an exposition, name -> value; checks that each has HELP and TYPE before it.
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line, help, type;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      help = line.substr(7, line.find(' ', 7) - 7);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      type = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(line.substr(line.rfind(' ') + 1), "gauge") << line;
    } else {
      const std::string name = line.substr(0, line.find(' '));
      EXPECT_EQ(help, name) << "no HELP line for " << name;
      EXPECT_EQ(type, name) << "no TYPE line for " << name;
      size_t used = 0;
      samples[name] = std::stod(line.substr(name.size() + 1), &used);
      EXPECT_EQ(name.size() + 1 + used, line.size()) << "trailing text: " << line;
    }
  }
  return samples;
}

TEST(Prometheus, BeforeTheFirstStepOnlyTheStep) {
  auto m = parse(prometheus_text(Snapshot{}));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at("ternion_step"), 0);
}

TEST(Prometheus, EveryQuantityWithHelpAndType) {
  Snapshot s;
  s.step = 120;
  s.loss = 2.5;
  s.val_loss = 2.75;
  s.tokens_per_second = 91234.5;
  s.mfu = 0.31;
  s.learning_rate = 6e-4;
  s.grad_norm = 1.25;
  s.memory_bytes = size_t{3} << 30;
  s.checkpoint_block_ms = 12.5;
  s.checkpoint_total_ms = 250;
  s.comm_ms = 4;
  auto m = parse(prometheus_text(s));
  EXPECT_EQ(m.at("ternion_step"), 120);
  EXPECT_EQ(m.at("ternion_loss"), 2.5);
  EXPECT_EQ(m.at("ternion_val_loss"), 2.75);
  EXPECT_EQ(m.at("ternion_tokens_per_second"), 91234.5);
  EXPECT_EQ(m.at("ternion_mfu"), 0.31);
  EXPECT_EQ(m.at("ternion_learning_rate"), 6e-4);
  EXPECT_EQ(m.at("ternion_grad_norm"), 1.25);
  EXPECT_EQ(m.at("ternion_memory_bytes"), 3221225472.0);
  EXPECT_EQ(m.at("ternion_checkpoint_block_ms"), 12.5);
  EXPECT_EQ(m.at("ternion_checkpoint_total_ms"), 250);
  EXPECT_EQ(m.at("ternion_comm_ms"), 4);
}

TEST(Prometheus, UnseenQuantitiesAreAbsentNotZero) {
  Snapshot s;
  s.step = 3;
  s.loss = 5.5;
  auto m = parse(prometheus_text(s));
  EXPECT_EQ(m.count("ternion_val_loss"), 0u);
  EXPECT_EQ(m.count("ternion_checkpoint_block_ms"), 0u);
  EXPECT_EQ(m.count("ternion_checkpoint_total_ms"), 0u);
  EXPECT_EQ(m.count("ternion_comm_ms"), 0u);
  EXPECT_EQ(m.at("ternion_loss"), 5.5);
}

}  // namespace
}  // namespace ternion::monitor

#include "monitor/server.h"

#include <httplib.h>
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace ternion::monitor {
namespace {

std::string scrape(int port, const std::string& path = "/metrics", int status = 200) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get(path.c_str());
  if (!res) return "no response: " + httplib::to_string(res.error());
  EXPECT_EQ(res->status, status);
  return res->body;
}

TEST(MetricsServer, ServesTheLatestSnapshot) {
  MetricsServer server(0, "127.0.0.1");
  ASSERT_GT(server.port(), 0);
  EXPECT_NE(scrape(server.port()).find("ternion_step 0\n"), std::string::npos);
  Snapshot s;
  s.step = 7;
  s.loss = 4.5;
  server.update(s);
  const std::string body = scrape(server.port());
  EXPECT_NE(body.find("ternion_step 7\n"), std::string::npos) << body;
  EXPECT_NE(body.find("ternion_loss 4.5\n"), std::string::npos) << body;
  EXPECT_EQ(scrape(server.port(), "/nothing-here", 404).find("ternion_step"), std::string::npos);
}

TEST(MetricsServer, PortInUseNamesTheAddress) {
  MetricsServer first(0, "127.0.0.1");
  try {
    MetricsServer second(first.port(), "127.0.0.1");
    FAIL() << "bound a port already in use";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << e.what();
  }
}

TEST(MetricsServer, StopsPromptly) {
  for (int i = 0; i < 3; ++i) MetricsServer server(0, "127.0.0.1");
}

}  // namespace
}  // namespace ternion::monitor

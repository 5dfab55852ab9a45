// The /metrics endpoint: an HTTP server on its own thread serving the latest Snapshot as
// Prometheus text. The training thread calls update() after each step; a scrape never
// waits for a step, only for the copy of one Snapshot.
#pragma once

#include <memory>
#include <string>

#include "monitor/prometheus.h"

namespace ternion::monitor {

class MetricsServer {
 public:
  // Listens on `host`:`port` (port 0 picks a free port; see port()). Throws Error naming
  // the address when it cannot bind (port in use, no permission).
  explicit MetricsServer(int port, const std::string& host = "0.0.0.0");
  // Stops serving and joins the server thread. Never throws.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const;
  // Thread-safe; cheap (copies one Snapshot under a mutex).
  void update(const Snapshot& s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ternion::monitor

// Training metrics in the Prometheus text exposition format (version 0.0.4): one gauge per
// quantity, each with its HELP and TYPE lines. Pure functions, no I/O; server.h serves them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ternion::monitor {

// The latest value of every quantity; a negative optional field has not been seen yet and
// is left out of the exposition (Prometheus then shows the series as absent, not as 0).
struct Snapshot {
  int64_t step = 0;  // optimizer steps completed; 0 = none yet
  double loss = 0;
  double val_loss = -1;  // the latest evaluation's loss
  double tokens_per_second = 0;
  double mfu = 0;  // fraction of peak
  double learning_rate = 0;
  double grad_norm = 0;
  size_t memory_bytes = 0;       // tensor memory in use
  double checkpoint_block_ms = -1;  // the latest save: time the step loop was blocked
  double checkpoint_total_ms = -1;  // the latest committed save: start to commit
  double comm_ms = -1;              // the latest step's wait on gradient communication
};

// The exposition text: "# HELP", "# TYPE" and a sample line per gauge, names prefixed
// "ternion_". Only `step` is shown before the first step.
std::string prometheus_text(const Snapshot& s);

// The content type that goes with it.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ternion::monitor

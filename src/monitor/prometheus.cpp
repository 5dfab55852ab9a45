#include "monitor/prometheus.h"

#include <charconv>
#include <cmath>

namespace ternion::monitor {
namespace {

// Shortest text that round-trips; Prometheus reads Go's float syntax, which includes this.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void gauge(std::string& out, const char* name, const char* help, const std::string& value) {
  out += "# HELP ternion_";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ternion_";
  out += name;
  out += " gauge\nternion_";
  out += name;
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string prometheus_text(const Snapshot& s) {
  std::string out;
  gauge(out, "step", "Optimizer steps completed (counted from the start of training).",
        std::to_string(s.step));
  if (s.step == 0) return out;
  gauge(out, "loss", "Training loss (mean cross-entropy) of the latest step.", number(s.loss));
  if (s.val_loss >= 0)
    gauge(out, "val_loss", "Validation loss of the latest evaluation.", number(s.val_loss));
  gauge(out, "tokens_per_second", "Training throughput of the latest step, tokens/s, all ranks.",
        number(s.tokens_per_second));
  gauge(out, "mfu", "Model FLOPs utilisation of the latest step, fraction of peak.", number(s.mfu));
  gauge(out, "learning_rate", "Learning rate of the latest step.", number(s.learning_rate));
  gauge(out, "grad_norm", "Global gradient norm of the latest step, before clipping.",
        number(s.grad_norm));
  gauge(out, "memory_bytes", "Tensor memory in use on rank 0, bytes.",
        std::to_string(s.memory_bytes));
  if (s.checkpoint_block_ms >= 0)
    gauge(out, "checkpoint_block_ms", "Time the latest checkpoint save blocked the step loop, ms.",
          number(s.checkpoint_block_ms));
  if (s.checkpoint_total_ms >= 0)
    gauge(out, "checkpoint_total_ms", "Time of the latest committed checkpoint, start to commit, ms.",
          number(s.checkpoint_total_ms));
  if (s.comm_ms >= 0)
    gauge(out, "comm_ms", "Time the latest step waited on gradient communication, ms.",
          number(s.comm_ms));
  return out;
}

}  // namespace ternion::monitor

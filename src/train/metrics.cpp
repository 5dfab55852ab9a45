#include "train/metrics.h"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace ternion::train {

CommMeter::CommMeter(const parallel::ParallelContext& ctx)
    : ctx_(ctx), last_(total()), last_tp_s_(ctx.tp ? ctx.tp->blocking_seconds() : 0) {}

CommBytes CommMeter::total() const {
  const auto bytes = [](const std::unique_ptr<parallel::Communicator>& c) { return c ? c->bytes_sent() : 0; };
  return {bytes(ctx_.dp), bytes(ctx_.tp), bytes(ctx_.pp) + bytes(ctx_.embedding)};
}

CommBytes CommMeter::lap(double* tp_ms) {
  const double tp_s = ctx_.tp ? ctx_.tp->blocking_seconds() : 0;
  if (tp_ms) *tp_ms = 1e3 * (tp_s - last_tp_s_);
  last_tp_s_ = tp_s;
  const CommBytes now = total();
  const CommBytes d{now.dp - last_.dp, now.tp - last_.tp, now.pp - last_.pp};
  last_ = now;
  return d;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream o;
  o << std::setprecision(8) << v;
  return o.str();
}

std::string metrics_json(const StepMetrics& m) {
  std::ostringstream out;
  const auto num = [](double v) { return json_number(v); };
  out << "{\"step\": " << m.step << ", \"loss\": " << num(m.loss) << ", \"lr\": " << num(m.lr)
      << ", \"grad_norm\": " << num(m.grad_norm) << ", \"ms\": " << num(m.ms)
      << ", \"tokens_per_sec\": " << num(m.tokens_per_sec) << ", \"mfu\": " << num(m.mfu)
      << ", \"mem_bytes\": " << m.mem_bytes << ", \"mem_peak\": " << m.mem_peak << ", \"comm_ms\": " << num(m.comm_ms)
      << ", \"comm_bytes\": {\"dp\": " << m.comm_bytes.dp << ", \"tp\": " << m.comm_bytes.tp
      << ", \"pp\": " << m.comm_bytes.pp << "}";
  if (m.loss_scale > 0)
    out << ", \"loss_scale\": " << num(m.loss_scale) << ", \"skipped\": " << (m.skipped ? "true" : "false")
        << ", \"skipped_steps\": " << m.skipped_steps;
  if (m.pp_idle >= 0) out << ", \"pp_idle\": " << num(m.pp_idle);
  if (m.tp_comm_ms >= 0) out << ", \"tp_comm_ms\": " << num(m.tp_comm_ms);
  if (m.val_loss >= 0 || std::isnan(m.val_loss)) out << ", \"val_loss\": " << num(m.val_loss);
  if (m.ckpt_block_ms >= 0) out << ", \"ckpt_block_ms\": " << num(m.ckpt_block_ms);
  if (m.ckpt_wait_ms >= 0) out << ", \"ckpt_wait_ms\": " << num(m.ckpt_wait_ms);
  if (m.ckpt_total_ms >= 0) out << ", \"ckpt_total_ms\": " << num(m.ckpt_total_ms);
  out << "}\n";
  return out.str();
}

std::string log_line(const StepMetrics& m, const LogLineOptions& o) {
  std::ostringstream log;
  log << "step " << std::setw(5) << m.step + 1 << "/" << o.total_steps << " | loss " << std::fixed
      << std::setprecision(4) << m.loss;
  if (m.val_loss >= 0) log << " | val " << m.val_loss;
  log << " | lr " << std::scientific << std::setprecision(2) << m.lr << std::fixed << " | grad norm "
      << std::setprecision(3) << m.grad_norm << " | " << std::setprecision(1) << m.ms << " ms | "
      << std::setprecision(0) << m.tokens_per_sec << " tok/s | MFU " << std::setprecision(1) << 100 * m.mfu
      << "% | mem " << static_cast<double>(m.mem_bytes) / 1048576.0 << " MiB";
  if (o.show_comm) log << " | comm wait " << m.comm_ms << " ms";
  if (m.skipped) log << " | skipped: inf/nan gradients, loss scale now " << o.loss_scale_now;
  if (o.loss_scaling && m.skipped_steps > 0) log << " | " << m.skipped_steps << " skipped";
  if (m.ckpt_block_ms >= 0) log << " | ckpt save blocked " << m.ckpt_block_ms << " ms";
  if (m.ckpt_total_ms >= 0) log << " | ckpt committed in " << m.ckpt_total_ms << " ms";
  log << "\n";
  return log.str();
}

std::string memory_entry_json(const MemoryEntry& e) {
  std::ostringstream o;
  o << "{\"rank\": " << e.rank << ", \"dp\": " << e.coord.dp << ", \"tp\": " << e.coord.tp << ", \"pp\": " << e.coord.pp
    << ", \"params\": " << e.params << ", \"grads\": " << e.grads << ", \"optim\": " << e.optim
    << ", \"activations_peak\": " << e.activations_peak << ", \"peak\": " << e.peak << "}";
  return o.str();
}

std::string memory_json(const std::vector<std::string>& entries) {
  std::string s = "{\"ranks\": [";
  for (size_t i = 0; i < entries.size(); ++i) s += (i ? ",\n  " : "\n  ") + entries[i];
  return s + "\n]}\n";
}

}  // namespace ternion::train

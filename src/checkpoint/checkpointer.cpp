// Checkpointer: the save / poll / finish / commit protocol and retention (FORMAT.md
// "Directory"), and the directory layout that latest_checkpoint and complete_checkpoints read.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "checkpoint/format.h"
#include "checkpoint/manifest.h"
#include "checkpoint/rank_file.h"
#include "core/error.h"
#include "io/durable.h"

namespace ternion::checkpoint {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
static_assert(io::kTmpSuffix == kTmpSuffix, "FORMAT.md names uncommitted directories by io's temp suffix");

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

void remove_quietly(const fs::path& path) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
}

struct WriteResult {
  bool ok = true;
  std::string record;  // record_yaml() of this rank's file ("" when it holds nothing), or the error text
  int64_t bytes = 0;
};

// Never throws: a failure is returned, for the commit vote.
WriteResult write_this_rank(const fs::path& tmp_dir, int rank, const State& state, RankFileHooks* hooks) {
  WriteResult r;
  if (state.tensors.empty()) return r;
  try {
    const FileRecord rec = write_rank_file(tmp_dir, rank, state, hooks);
    r.record = record_yaml(rec);
    r.bytes = rec.bytes;
  } catch (const std::exception& e) {
    r.ok = false;
    r.record = e.what();
  }
  return r;
}

}  // namespace

Group Group::local() {
  Group g;
  g.all_true = [](bool b) { return b; };
  g.all_gather = [](const std::string& s) { return std::vector<std::string>{s}; };
  return g;
}

Entry deferred(std::string name, const Tensor& t) {
  if (!t.device().is_cpu() || t.dtype() != DType::f32) return whole(std::move(name), t);
  Entry e;
  e.name = std::move(name);
  e.source = t;
  e.global_shape = t.shape();
  e.offsets.assign(t.shape().size(), 0);
  return e;
}

Entry whole(std::string name, const Tensor& t) {
  Entry e;
  e.name = std::move(name);
  e.data = t.to(Device::cpu()).to(DType::f32).contiguous();
  if (e.data.raw_data() == t.raw_data()) e.data = e.data.clone();  // never alias live state
  e.global_shape = t.shape();
  e.offsets.assign(t.shape().size(), 0);
  return e;
}

struct Checkpointer::Pending {
  State state;
  fs::path tmp_dir, final_dir;
  Clock::time_point start;
  double blocking_s = 0;
  std::thread thread;
  std::atomic<bool> done{false};
  WriteResult result;
  std::promise<void> staged;  // the deferred entries are copied
  std::shared_future<void> staged_future = staged.get_future().share();
};

namespace {

// Copies every deferred entry's source into its staging tensor (Entry::source).
void stage_deferred(State& state) {
  for (Entry& e : state.tensors) {
    if (!e.source.defined()) continue;
    e.data = e.source.contiguous().clone();
    e.source = Tensor();
  }
}

}  // namespace

Checkpointer::Checkpointer(std::string run_dir, Group group, Options options)
    : run_dir_(std::move(run_dir)), group_(std::move(group)), options_(std::move(options)) {
  TN_CHECK(options_.keep > 0, "checkpoint", "checkpoint.keep must be > 0, got ", options_.keep);
}

Checkpointer::~Checkpointer() {
  if (!pending_) return;
  // An exception is unwinding (or the caller forgot finish()): do not start collectives
  // that other ranks may never join; just let the writer end. The .tmp stays uncommitted.
  if (pending_->thread.joinable()) pending_->thread.join();
}

std::string Checkpointer::checkpoints_dir() const { return (fs::path(run_dir_) / kCheckpointsDir).string(); }

void Checkpointer::save(State state) {
  const auto t0 = Clock::now();
  finish();
  auto p = std::make_unique<Pending>();
  p->final_dir = fs::path(checkpoints_dir()) / step_dir_name(state.step);
  p->tmp_dir = io::tmp_path(p->final_dir);
  p->start = t0;
  std::string error;
  try {
    if (group_.rank == 0) fs::remove_all(p->tmp_dir);
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Every rank waits until rank 0 has cleared a stale directory of the same name.
  TN_CHECK(group_.all_true(error.empty()), "checkpoint", "cannot prepare '", p->tmp_dir.string(), "'",
           error.empty() ? "" : ": ", error);
  try {
    fs::create_directories(p->tmp_dir);
  } catch (const std::exception& e) {
    error = e.what();
  }
  TN_CHECK(group_.all_true(error.empty()), "checkpoint", "cannot create '", p->tmp_dir.string(), "'",
           error.empty() ? "" : ": ", error);
  p->state = std::move(state);
  pending_ = std::move(p);
  Pending* raw = pending_.get();
  const int rank = group_.rank;
  RankFileHooks* hooks = options_.hooks.get();
  if (options_.async) {
    raw->thread = std::thread([raw, rank, hooks] {
      try {
        stage_deferred(raw->state);
      } catch (const std::exception& e) {
        raw->result.ok = false;
        raw->result.record = e.what();
      }
      raw->staged.set_value();
      if (raw->result.ok) raw->result = write_this_rank(raw->tmp_dir, rank, raw->state, hooks);
      raw->state.tensors.clear();  // release the staging memory early
      raw->done.store(true, std::memory_order_release);
    });
    raw->blocking_s = seconds_since(t0);
  } else {
    stage_deferred(raw->state);
    raw->staged.set_value();
    raw->result = write_this_rank(raw->tmp_dir, rank, raw->state, hooks);
    raw->state.tensors.clear();
    raw->done.store(true);
    raw->blocking_s = seconds_since(t0);
    commit();
  }
}

void Checkpointer::wait_staged() {
  if (pending_) pending_->staged_future.wait();
}

std::optional<SaveTiming> Checkpointer::poll() {
  if (!pending_) return std::nullopt;
  if (!group_.all_true(pending_->done.load(std::memory_order_acquire))) return std::nullopt;
  return commit();
}

std::optional<SaveTiming> Checkpointer::finish() {
  if (!pending_) return std::nullopt;
  if (pending_->thread.joinable()) pending_->thread.join();
  return commit();
}

std::optional<SaveTiming> Checkpointer::commit() {
  std::unique_ptr<Pending> p = std::move(pending_);
  if (p->thread.joinable()) p->thread.join();
  const bool all_ok = group_.all_true(p->result.ok);
  const std::vector<std::string> records = group_.all_gather(p->result.record);
  if (!all_ok) {
    std::string why;
    for (size_t r = 0; r < records.size(); ++r) {
      if (records[r].empty()) continue;
      // Error texts are not YAML maps with a 'file' key.
      YAML::Node n;
      try {
        n = YAML::Load(records[r]);
      } catch (...) {
      }
      if (!n.IsMap()) why += str_cat("\n  rank ", r, ": ", records[r]);
    }
    // Every rank's writer has finished (each voted after joining its own): the partial
    // directory can go now, giving a full disk its space back.
    if (group_.rank == 0) remove_quietly(p->tmp_dir);
    fail("checkpoint", str_cat("save of step ", p->state.step, " failed; '", p->tmp_dir.string(),
                               "' was not committed (removed) and the last complete checkpoint is intact:", why));
  }
  SaveTiming timing;
  timing.step = p->state.step;
  timing.blocking_s = p->blocking_s;
  timing.bytes = p->result.bytes;
  std::string commit_error;
  if (group_.rank == 0) try {
      const fs::path dir = p->final_dir.parent_path();
      io::write_file_atomically(p->tmp_dir / kManifestFile, manifest_yaml(p->state, group_.size, records),
                                "checkpoint");
      if (fs::exists(p->final_dir)) fs::remove_all(p->final_dir);
      io::publish(p->tmp_dir, p->final_dir, "checkpoint");
      io::write_file_atomically(dir / kLatestFile, p->final_dir.filename().string() + "\n", "checkpoint");
      // Retention: only now that the new checkpoint is committed.
      const std::vector<std::string> complete = complete_checkpoints(run_dir_);
      for (size_t i = static_cast<size_t>(options_.keep); i < complete.size(); ++i) fs::remove_all(complete[i]);
      for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory() && name.starts_with("step_") && name.ends_with(kTmpSuffix))
          fs::remove_all(entry.path());
      }
    } catch (const std::exception& e) {
      commit_error = e.what();
      remove_quietly(p->tmp_dir);  // still there when the manifest or the rename failed
    }
  // Every rank returns only once `latest` names the new checkpoint (or every rank throws).
  TN_CHECK(group_.all_true(commit_error.empty()), "checkpoint", "commit of step ", p->state.step,
           " failed on rank 0", commit_error.empty() ? "" : ": ", commit_error);
  timing.total_s = seconds_since(p->start);
  return timing;
}

std::vector<std::string> complete_checkpoints(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / kCheckpointsDir;
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.starts_with("step_") && !name.ends_with(kTmpSuffix))
      out.push_back(entry.path().string());
  }
  std::sort(out.rbegin(), out.rend());  // zero-padded step numbers sort by name
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / kCheckpointsDir / kLatestFile;
  std::ifstream in(latest);
  std::string name;
  if (!(in >> name)) return "";
  return (latest.parent_path() / name).string();
}

}  // namespace ternion::checkpoint

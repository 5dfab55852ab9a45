#include "checkpoint/checkpoint.h"

#include <hdf5.h>
#include <xxhash.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "checkpoint/format.h"
#include "core/error.h"
#include "io/durable.h"
#include "io/h5.h"

#ifndef TERNION_VERSION
#define TERNION_VERSION "0.0.0"
#endif

namespace ternion::checkpoint {

namespace fs = std::filesystem;
using io::h5::check_id;
using io::h5::check_rc;
using io::h5::Handle;
using io::h5::QuietErrors;
using Clock = std::chrono::steady_clock;

namespace {

std::mutex g_faults_mu;
testing::Faults g_faults;

testing::Faults faults() {
  std::lock_guard<std::mutex> lock(g_faults_mu);
  return g_faults;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::string rank_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rank_%05d.h5", rank);
  return buf;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t checksum(const Tensor& t) {
  return XXH64(t.raw_data(), static_cast<size_t>(t.numel()) * sizeof(float), 0);
}

void write_int_array_attr(hid_t obj, const char* name, const std::vector<int64_t>& v,
                          const std::string& file) {
  const hsize_t n = v.size();
  Handle space(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       "checkpoint", "cannot create attribute in", file),
              H5Aclose);
  if (n) check_rc(H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()), "checkpoint", "cannot write", file);
}

void write_int_attr(hid_t obj, const char* name, int64_t v, const std::string& file) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       "checkpoint", "cannot create attribute in", file),
              H5Aclose);
  check_rc(H5Awrite(attr.get(), H5T_NATIVE_INT64, &v), "checkpoint", "cannot write", file);
}

void write_string_attr(hid_t obj, const char* name, std::string_view v, const std::string& file) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<size_t>(v.size(), 1));
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       "checkpoint", "cannot create attribute in", file),
              H5Aclose);
  std::string buf(v);
  buf.resize(std::max<size_t>(v.size(), 1), '\0');
  check_rc(H5Awrite(attr.get(), type.get(), buf.data()), "checkpoint", "cannot write", file);
}

YAML::Node shape_node(const std::vector<int64_t>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (int64_t x : v) n.push_back(x);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

std::vector<int64_t> int_list(const YAML::Node& n, const std::string& what) {
  TN_CHECK(n && n.IsSequence(), "checkpoint", what, " is not a list");
  std::vector<int64_t> v;
  for (const auto& x : n) v.push_back(x.as<int64_t>());
  return v;
}

struct WriteResult {
  bool ok = true;
  std::string record;  // YAML of this rank's file entry, or the error text
  int64_t bytes = 0;
};

// Writes this rank's file into tmp_dir and fsyncs it. Never throws: failures are returned.
WriteResult write_rank_file(const fs::path& tmp_dir, int rank, const State& state) {
  WriteResult r;
  if (state.tensors.empty()) {
    r.record = "";
    return r;
  }
  const std::string file_name = rank_file_name(rank);
  const fs::path path = tmp_dir / file_name;
  const std::string file = path.string();
  const testing::Faults f = faults();
  try {
    // HDF5 is locked per dataset (QuietErrors holds the process-wide HDF5 lock), so the
    // data loader on the training thread is never held up for a whole file.
    YAML::Node rec;
    rec["file"] = file_name;
    rec["rank"] = rank;
    hsize_t reported = 0;
    Handle fh;
    {
      QuietErrors quiet;
      fh = Handle(check_id(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "checkpoint",
                           "cannot create", file),
                  H5Fclose);
      write_string_attr(fh.get(), "format", kFormatName, file);
      write_int_attr(fh.get(), "format_version", kFormatVersion, file);
      write_int_attr(fh.get(), "step", state.step, file);
      write_int_attr(fh.get(), "rank", rank, file);
    }
    int index = 0;
    for (const Entry& e : state.tensors) {
      if (f.write_delay_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(f.write_delay_s));
      TN_CHECK(index != f.fail_write_at, "checkpoint", "injected failure writing '", e.name, "' to '", file,
               "'");
      ++index;
      const Tensor& t = e.data;
      TN_CHECK(t.dtype() == DType::f32 && t.is_contiguous() && t.device().is_cpu(), "checkpoint", "'",
               e.name, "' must be staged as a contiguous host f32 tensor, got ", t.str());
      {
        QuietErrors quiet;
        Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
        H5Pset_create_intermediate_group(lcpl.get(), 1);
        std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
        Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                     H5Sclose);
        Handle ds(check_id(H5Dcreate2(fh.get(), e.name.c_str(), H5T_IEEE_F32LE, space.get(), lcpl.get(),
                                      H5P_DEFAULT, H5P_DEFAULT),
                           "checkpoint", "cannot create dataset '" + e.name + "' in", file),
                  H5Dclose);
        if (t.numel())
          check_rc(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()),
                   "checkpoint", "cannot write '" + e.name + "' to", file);
        write_int_array_attr(ds.get(), "global_shape", e.global_shape, file);
        write_int_array_attr(ds.get(), "offsets", e.offsets, file);
      }
      YAML::Node tn;
      tn["name"] = e.name;
      tn["dtype"] = "f32";
      tn["global_shape"] = shape_node(e.global_shape);
      tn["offsets"] = shape_node(e.offsets);
      tn["shape"] = shape_node(t.shape());
      tn["xxh64"] = hex64(checksum(t));
      tn.SetStyle(YAML::EmitterStyle::Flow);
      rec["tensors"].push_back(tn);
    }
    {
      QuietErrors quiet;
      check_rc(H5Fflush(fh.get(), H5F_SCOPE_GLOBAL), "checkpoint", "cannot flush", file);
      check_rc(H5Fget_filesize(fh.get(), &reported), "checkpoint", "cannot size", file);
      TN_CHECK(fh.reset(), "checkpoint", "cannot close '", file, "'");
    }
    if (f.short_write) fs::resize_file(path, reported / 2);
    io::fsync_path(path, false, "checkpoint");
    const auto on_disk = static_cast<int64_t>(fs::file_size(path));
    TN_CHECK(on_disk == static_cast<int64_t>(reported), "checkpoint", "short write of '", file, "': ",
             on_disk, " bytes on disk, ", reported, " written");
    rec["bytes"] = on_disk;
    r.bytes = on_disk;
    YAML::Emitter out;
    out << rec;
    r.record = out.c_str();
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

Entry whole(std::string name, const Tensor& t) {
  Entry e;
  e.name = std::move(name);
  e.data = t.to(Device::cpu()).to(DType::f32).contiguous();
  if (e.data.raw_data() == t.raw_data()) e.data = e.data.clone();  // never alias live state
  e.global_shape = t.shape();
  e.offsets.assign(t.shape().size(), 0);
  return e;
}

void testing::set_faults(const Faults& f) {
  std::lock_guard<std::mutex> lock(g_faults_mu);
  g_faults = f;
}

// --- Saving --------------------------------------------------------------------------

struct Checkpointer::Pending {
  State state;
  fs::path tmp_dir, final_dir;
  Clock::time_point start;
  double blocking_s = 0;
  std::thread thread;
  std::atomic<bool> done{false};
  WriteResult result;
};

Checkpointer::Checkpointer(std::string run_dir, Group group, Options options)
    : run_dir_(std::move(run_dir)), group_(std::move(group)), options_(options) {
  TN_CHECK(options_.keep > 0, "checkpoint", "checkpoint.keep must be > 0, got ", options_.keep);
}

Checkpointer::~Checkpointer() {
  if (!pending_) return;
  // An exception is unwinding (or the caller forgot finish()): do not start collectives
  // that other ranks may never join; just let the writer end. The .tmp stays uncommitted.
  if (pending_->thread.joinable()) pending_->thread.join();
}

std::string Checkpointer::checkpoints_dir() const {
  return (fs::path(run_dir_) / kCheckpointsDir).string();
}

void Checkpointer::save(State state) {
  const auto t0 = Clock::now();
  finish();
  auto p = std::make_unique<Pending>();
  p->final_dir = fs::path(checkpoints_dir()) / step_dir_name(state.step);
  p->tmp_dir = p->final_dir.string() + std::string(kTmpSuffix);
  p->start = t0;
  std::string error;
  try {
    if (group_.rank == 0) fs::remove_all(p->tmp_dir);
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Every rank waits until rank 0 has cleared a stale directory of the same name.
  TN_CHECK(group_.all_true(error.empty()), "checkpoint", "cannot prepare '", p->tmp_dir.string(),
           "'", error.empty() ? "" : ": ", error);
  try {
    fs::create_directories(p->tmp_dir);
  } catch (const std::exception& e) {
    error = e.what();
  }
  TN_CHECK(group_.all_true(error.empty()), "checkpoint", "cannot create '", p->tmp_dir.string(),
           "'", error.empty() ? "" : ": ", error);
  p->state = std::move(state);
  pending_ = std::move(p);
  Pending* raw = pending_.get();
  const int rank = group_.rank;
  if (options_.async) {
    raw->thread = std::thread([raw, rank] {
      raw->result = write_rank_file(raw->tmp_dir, rank, raw->state);
      raw->state.tensors.clear();  // release the staging memory early
      raw->done.store(true, std::memory_order_release);
    });
    raw->blocking_s = seconds_since(t0);
  } else {
    raw->result = write_rank_file(raw->tmp_dir, rank, raw->state);
    raw->state.tensors.clear();
    raw->done.store(true);
    raw->blocking_s = seconds_since(t0);
    commit();
  }
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
    fail("checkpoint", str_cat("save of step ", p->state.step, " failed; '", p->tmp_dir.string(),
                               "' was not committed and the last complete checkpoint is intact:", why));
  }
  SaveTiming timing;
  timing.step = p->state.step;
  timing.blocking_s = p->blocking_s;
  timing.bytes = p->result.bytes;
  std::string commit_error;
  if (group_.rank == 0) try {
    YAML::Node m;
    m["format"] = std::string(kFormatName);
    m["format_version"] = kFormatVersion;
    m["ternion_version"] = TERNION_VERSION;
    m["step"] = p->state.step;
    m["world_size"] = group_.size;
    for (const auto& [k, v] : p->state.layout) m["layout"][k] = v;
    m["layout"].SetStyle(YAML::EmitterStyle::Flow);
    for (const auto& [k, v] : p->state.scalars) m["state"][k] = v;
    m["config"] = p->state.config_yaml;
    m["files"] = YAML::Node(YAML::NodeType::Sequence);
    for (const std::string& rec : records)
      if (!rec.empty()) m["files"].push_back(YAML::Load(rec));
    YAML::Emitter out;
    out << m;
    io::write_file_atomically(p->tmp_dir / kManifestFile, std::string(out.c_str()) + "\n", "checkpoint");
    io::fsync_path(p->tmp_dir, true, "checkpoint");
    if (fs::exists(p->final_dir)) fs::remove_all(p->final_dir);
    fs::rename(p->tmp_dir, p->final_dir);
    io::fsync_path(p->final_dir.parent_path(), true, "checkpoint");
    io::write_file_atomically(p->final_dir.parent_path() / kLatestFile, p->final_dir.filename().string() + "\n",
                              "checkpoint");
    // Retention: only now that the new checkpoint is committed.
    const std::vector<std::string> complete = complete_checkpoints(run_dir_);
    for (size_t i = static_cast<size_t>(options_.keep); i < complete.size(); ++i) fs::remove_all(complete[i]);
    for (const auto& entry : fs::directory_iterator(p->final_dir.parent_path())) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.starts_with("step_") && name.ends_with(kTmpSuffix))
        fs::remove_all(entry.path());
    }
  } catch (const std::exception& e) {
    commit_error = e.what();
  }
  // Every rank returns only once `latest` names the new checkpoint (or every rank throws).
  TN_CHECK(group_.all_true(commit_error.empty()), "checkpoint", "commit of step ", p->state.step,
           " failed on rank 0", commit_error.empty() ? "" : ": ", commit_error);
  timing.total_s = seconds_since(p->start);
  return timing;
}

// --- Loading -------------------------------------------------------------------------

Manifest read_manifest(const std::string& dir) {
  const fs::path mpath = fs::path(dir) / kManifestFile;
  TN_CHECK(fs::is_directory(dir), "checkpoint", "no checkpoint directory '", dir, "'");
  TN_CHECK(fs::exists(mpath), "checkpoint", "'", dir, "' has no ", kManifestFile,
           ": not a complete checkpoint");
  YAML::Node n;
  try {
    n = YAML::LoadFile(mpath.string());
  } catch (const std::exception& e) {
    fail("checkpoint", str_cat("cannot parse '", mpath.string(), "': ", e.what()));
  }
  Manifest m;
  m.dir = dir;
  try {
    TN_CHECK(n["format"] && n["format"].as<std::string>() == kFormatName, "checkpoint", "'",
             mpath.string(), "' is not a ", kFormatName, " manifest");
    m.format_version = n["format_version"].as<int64_t>();
    TN_CHECK(m.format_version == kFormatVersion, "checkpoint", "'", mpath.string(),
             "' has unknown format version ", m.format_version, " (this Ternion reads version ",
             kFormatVersion, ")");
    m.ternion_version = n["ternion_version"].as<std::string>("");
    m.step = n["step"].as<int64_t>();
    m.world_size = n["world_size"].as<int64_t>(1);
    for (const auto& kv : n["layout"]) m.layout[kv.first.as<std::string>()] = kv.second.as<std::string>();
    for (const auto& kv : n["state"]) m.scalars[kv.first.as<std::string>()] = kv.second.as<int64_t>();
    m.config_yaml = n["config"].as<std::string>("");
    for (const auto& f : n["files"]) {
      const std::string file = f["file"].as<std::string>();
      const int64_t bytes = f["bytes"].as<int64_t>();
      m.file_bytes[file] = bytes;
      const fs::path fp = fs::path(dir) / file;
      TN_CHECK(fs::exists(fp), "checkpoint", "missing rank file '", fp.string(), "' listed in ",
               mpath.string());
      const auto size = static_cast<int64_t>(fs::file_size(fp));
      TN_CHECK(size >= bytes, "checkpoint", "'", fp.string(), "' is truncated: ", size,
               " bytes, the manifest records ", bytes);
      for (const auto& t : f["tensors"]) {
        TensorInfo ti;
        ti.file = file;
        ti.name = t["name"].as<std::string>();
        ti.dtype = t["dtype"].as<std::string>();
        const auto gs = int_list(t["global_shape"], "global_shape");
        ti.global_shape.assign(gs.begin(), gs.end());
        ti.offsets = int_list(t["offsets"], "offsets");
        const auto s = int_list(t["shape"], "shape");
        ti.shape.assign(s.begin(), s.end());
        ti.xxh64 = std::stoull(t["xxh64"].as<std::string>(), nullptr, 16);
        m.tensors.push_back(std::move(ti));
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("checkpoint", str_cat("malformed manifest '", mpath.string(), "': ", e.what()));
  }
  return m;
}

namespace {

// Reads one dataset in full and verifies its checksum.
Tensor read_dataset(const Manifest& m, const TensorInfo& ti) {
  QuietErrors quiet;
  const std::string file = (fs::path(m.dir) / ti.file).string();
  Handle fh(check_id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "checkpoint", "cannot open", file),
            H5Fclose);
  Handle ds(check_id(H5Dopen2(fh.get(), ti.name.c_str(), H5P_DEFAULT), "checkpoint",
                     "cannot open tensor '" + ti.name + "' in", file),
            H5Dclose);
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const Shape shape(dims.begin(), dims.end());
  TN_CHECK(shape == ti.shape, "checkpoint", "tensor '", ti.name, "' in '", file, "' has shape ",
           shape_str(shape), ", the manifest records ", shape_str(ti.shape));
  Tensor buf = Tensor::empty(shape, DType::f32);
  if (buf.numel())
    check_rc(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.raw_data()),
             "checkpoint", "cannot read tensor '" + ti.name + "' from", file);
  const uint64_t sum = checksum(buf);
  TN_CHECK(sum == ti.xxh64, "checkpoint", "checksum mismatch for tensor '", ti.name, "' in '", file,
           "': xxh64 ", hex64(sum), ", the manifest records ", hex64(ti.xxh64), " (the file is damaged)");
  return buf;
}

bool same_tensor(const std::string& dataset, const std::string& name) {
  if (dataset == name) return true;
  return dataset.size() > name.size() + 1 && dataset.starts_with(name) && dataset[name.size()] == '@';
}

}  // namespace

void read_tensor(const Manifest& m, const std::string& name, const Shape& global_shape,
                 const std::vector<int64_t>& offsets, Tensor& out) {
  const int nd = static_cast<int>(global_shape.size());
  TN_CHECK(static_cast<int>(offsets.size()) == nd && out.ndim() == nd && out.is_contiguous() &&
               out.device().is_cpu(),
           "checkpoint", "read_tensor('", name, "'): bad request ", out.str());
  int64_t covered = 0;
  bool found = false;
  for (const TensorInfo& ti : m.tensors) {
    if (!same_tensor(ti.name, name)) continue;
    found = true;
    TN_CHECK(ti.global_shape == global_shape, "checkpoint", "tensor '", name, "' in '",
             (fs::path(m.dir) / ti.file).string(), "' has global shape ", shape_str(ti.global_shape),
             "; this model expects ", shape_str(global_shape),
             " (the checkpoint was written for a different model)");
    // Intersection of the dataset's box with the requested box.
    std::vector<int64_t> lo(nd), hi(nd);
    bool empty = false;
    for (int d = 0; d < nd; ++d) {
      lo[d] = std::max(ti.offsets[d], offsets[d]);
      hi[d] = std::min(ti.offsets[d] + ti.shape[d], offsets[d] + out.shape()[d]);
      if (lo[d] >= hi[d]) empty = true;
    }
    if (empty && out.numel() > 0) continue;
    Tensor src = read_dataset(m, ti);
    if (empty) continue;
    Tensor dst = out;
    int64_t n = 1;
    for (int d = 0; d < nd; ++d) {
      src = src.slice(d, lo[d] - ti.offsets[d], hi[d] - ti.offsets[d]);
      dst = dst.slice(d, lo[d] - offsets[d], hi[d] - offsets[d]);
      n *= hi[d] - lo[d];
    }
    dst.copy_(src);
    covered += n;
  }
  TN_CHECK(found, "checkpoint", "checkpoint '", m.dir, "' has no tensor '", name, "'");
  TN_CHECK(covered >= out.numel(), "checkpoint", "checkpoint '", m.dir, "' holds only ", covered, " of the ",
           out.numel(), " elements of tensor '", name, "' requested at offsets ", shape_str(Shape(offsets)));
}

int64_t verify(const Manifest& m) {
  for (const TensorInfo& ti : m.tensors) read_dataset(m, ti);
  return static_cast<int64_t>(m.tensors.size());
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

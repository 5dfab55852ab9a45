#include "checkpoint/manifest.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>

#include "checkpoint/format.h"
#include "core/error.h"

#ifndef TERNION_VERSION
#define TERNION_VERSION "0.0.0"
#endif

namespace ternion::checkpoint {

namespace fs = std::filesystem;

namespace {

YAML::Node flow_list(const std::vector<int64_t>& v) {
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

}  // namespace

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string record_yaml(const FileRecord& r) {
  YAML::Node rec;
  rec["file"] = r.file;
  rec["rank"] = r.rank;
  for (const TensorInfo& ti : r.tensors) {
    YAML::Node tn;
    tn["name"] = ti.name;
    tn["dtype"] = ti.dtype;
    tn["global_shape"] = flow_list(ti.global_shape);
    tn["offsets"] = flow_list(ti.offsets);
    tn["shape"] = flow_list(ti.shape);
    tn["xxh64"] = hex64(ti.xxh64);
    tn.SetStyle(YAML::EmitterStyle::Flow);
    rec["tensors"].push_back(tn);
  }
  rec["bytes"] = r.bytes;
  YAML::Emitter out;
  out << rec;
  return out.c_str();
}

std::string manifest_yaml(const State& state, int world_size, const std::vector<std::string>& records) {
  YAML::Node m;
  m["format"] = std::string(kFormatName);
  m["format_version"] = kFormatVersion;
  m["ternion_version"] = TERNION_VERSION;
  m["step"] = state.step;
  m["world_size"] = world_size;
  for (const auto& [k, v] : state.layout) m["layout"][k] = v;
  m["layout"].SetStyle(YAML::EmitterStyle::Flow);
  for (const auto& [k, v] : state.scalars) m["state"][k] = v;
  m["config"] = state.config_yaml;
  m["files"] = YAML::Node(YAML::NodeType::Sequence);
  for (const std::string& rec : records)
    if (!rec.empty()) m["files"].push_back(YAML::Load(rec));
  YAML::Emitter out;
  out << m;
  return std::string(out.c_str()) + "\n";
}

Manifest read_manifest(const std::string& dir) {
  const fs::path mpath = fs::path(dir) / kManifestFile;
  TN_CHECK(fs::is_directory(dir), "checkpoint", "no checkpoint directory '", dir, "'");
  TN_CHECK(fs::exists(mpath), "checkpoint", "'", dir, "' has no ", kManifestFile, ": not a complete checkpoint");
  YAML::Node n;
  try {
    n = YAML::LoadFile(mpath.string());
  } catch (const std::exception& e) {
    fail("checkpoint", str_cat("cannot parse '", mpath.string(), "': ", e.what()));
  }
  Manifest m;
  m.dir = dir;
  try {
    TN_CHECK(n["format"] && n["format"].as<std::string>() == kFormatName, "checkpoint", "'", mpath.string(),
             "' is not a ", kFormatName, " manifest");
    m.format_version = n["format_version"].as<int64_t>();
    TN_CHECK(m.format_version == kFormatVersion, "checkpoint", "'", mpath.string(), "' has unknown format version ",
             m.format_version, " (this Ternion reads version ", kFormatVersion, ")");
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
      TN_CHECK(fs::exists(fp), "checkpoint", "missing rank file '", fp.string(), "' listed in ", mpath.string());
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
        bool inside = ti.offsets.size() == ti.global_shape.size() && ti.shape.size() == ti.global_shape.size();
        for (size_t d = 0; inside && d < ti.shape.size(); ++d)
          inside = ti.offsets[d] >= 0 && ti.shape[d] >= 0 && ti.offsets[d] + ti.shape[d] <= ti.global_shape[d];
        TN_CHECK(inside, "checkpoint", "malformed manifest '", mpath.string(), "': tensor '", ti.name, "' of ",
                 file, " at offsets ", shape_str(Shape(ti.offsets)), " with shape ", shape_str(ti.shape),
                 " does not lie in its global shape ", shape_str(ti.global_shape));
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

}  // namespace ternion::checkpoint

// `ternion checkpoint inspect DIR`, `ternion checkpoint verify DIR` and
// `ternion checkpoint export DIR --output model.h5`.
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/coverage.h"
#include "checkpoint/format.h"
#include "checkpoint/weights_file.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "io/paths.h"
#include "train/config.h"

namespace ternion::cli {

namespace {

std::string resolve(const std::string& dir) {
  if (std::filesystem::exists(std::filesystem::path(dir) / checkpoint::kManifestFile)) return dir;
  const std::string latest = checkpoint::latest_checkpoint(dir);
  return latest.empty() ? dir : latest;
}

int inspect(const std::string& dir) {
  const checkpoint::Manifest m = checkpoint::read_manifest(resolve(dir));
  std::printf("checkpoint %s\n  format version %lld, written by ternion %s\n  step %lld, world size %lld\n",
              m.dir.c_str(), static_cast<long long>(m.format_version), m.ternion_version.c_str(),
              static_cast<long long>(m.step), static_cast<long long>(m.world_size));
  std::printf("  layout:");
  for (const auto& [k, v] : m.layout) std::printf(" %s=%s", k.c_str(), v.c_str());
  std::printf("\n  state:");
  for (const auto& [k, v] : m.scalars) std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
  std::printf("\n  files:\n");
  int64_t total = 0;
  for (const auto& [f, bytes] : m.file_bytes) {
    std::printf("    %-16s %12lld bytes\n", f.c_str(), static_cast<long long>(bytes));
    total += bytes;
  }
  // Each tensor once, with the parts of it each rank file holds (half-open index ranges).
  std::vector<std::string> order;
  std::map<std::string, std::vector<const checkpoint::TensorInfo*>> parts;
  for (const auto& t : m.tensors) {
    const std::string name = t.name.substr(0, t.name.find('@'));
    if (!parts.count(name)) order.push_back(name);
    parts[name].push_back(&t);
  }
  std::printf("  tensors (%zu in %zu datasets, %.1f MiB on disk), and which file holds which part:\n", order.size(),
              m.tensors.size(), static_cast<double>(total) / 1048576.0);
  for (const std::string& name : order) {
    const auto& ps = parts[name];
    std::string where;
    std::string file;
    for (const checkpoint::TensorInfo* t : ps) {
      if (t->file != file) {
        if (!where.empty()) where += "; ";
        where += t->file;
        where += ':';
        file = t->file;
      }
      where += ' ';
      where += checkpoint::box_str(checkpoint::Box{t->offsets, t->shape});
    }
    std::printf("    %-56s %s %-14s %s\n", name.c_str(), ps.front()->dtype.c_str(),
                shape_str(ps.front()->global_shape).c_str(), where.c_str());
  }
  const int64_t n = checkpoint::verify(m);
  std::printf("  checksums: all %lld datasets verified (xxh64)\n", static_cast<long long>(n));
  return 0;
}

int verify(const std::string& dir) {
  const std::string path = resolve(dir);
  checkpoint::Manifest m;
  try {
    m = checkpoint::read_manifest(path);
  } catch (const Error& e) {
    std::printf("checkpoint %s: cannot be read: %s\n", path.c_str(), e.what());
    return 1;
  }
  const std::vector<std::string> problems = checkpoint::verify_report(m);
  std::set<std::string> names;
  for (const auto& t : m.tensors) names.insert(t.name.substr(0, t.name.find('@')));
  if (problems.empty()) {
    std::printf("checkpoint %s: ok (step %lld; %zu tensors in %zu datasets over %zu files: every checksum, every "
                "tensor covered exactly)\n",
                m.dir.c_str(), static_cast<long long>(m.step), names.size(), m.tensors.size(), m.file_bytes.size());
    return 0;
  }
  std::printf("checkpoint %s: %zu problem(s)\n", m.dir.c_str(), problems.size());
  for (const std::string& p : problems) std::printf("  %s\n", p.c_str());
  return 1;
}

int export_weights(const std::string& dir, const std::string& output) {
  const std::string input = resolve(dir);
  // Before anything is written: the export must not overwrite the checkpoint it reads.
  io::refuse_output_over_inputs(output, {input}, "checkpoint export");
  const checkpoint::Manifest m = checkpoint::read_manifest(input);
  const train::Config config = train::parse_config(m.config_yaml, m.dir + "/manifest.yaml");
  // Every parameter, reassembled whole from whatever layout wrote it.
  std::map<std::string, Shape> shapes;
  const std::string prefix(checkpoint::kParamPrefix);
  for (const auto& t : m.tensors) {
    if (!t.name.starts_with(prefix)) continue;
    std::string name = t.name.substr(prefix.size());
    if (auto at = name.find('@'); at != std::string::npos) name.resize(at);
    shapes[name] = t.global_shape;
  }
  TN_CHECK(!shapes.empty(), "checkpoint export", "'", m.dir, "' holds no parameters");
  std::vector<checkpoint::NamedTensor> named;
  for (const auto& [name, shape] : shapes) {
    Tensor t = Tensor::empty(shape, DType::f32);
    checkpoint::read_tensor(m, prefix + name, shape, std::vector<int64_t>(shape.size(), 0), t);
    named.push_back({name, t});
  }
  const auto& mc = config.model;
  checkpoint::write_weights(output, named,
                            {{"vocab_size", mc.vocab_size}, {"block_size", mc.block_size},
                             {"n_layer", mc.n_layer}, {"n_head", mc.n_head}, {"n_embd", mc.n_embd}});
  std::printf("checkpoint export: %zu parameters of step %lld -> %s\n", named.size(),
              static_cast<long long>(m.step), output.c_str());
  return 0;
}

}  // namespace

int run_checkpoint(int argc, char** argv) {
  if (argc < 3) {
    std::fputs(kCheckpointUsage, stderr);
    return 2;
  }
  const std::string sub = argv[1];
  const std::string dir = argv[2];
  if (sub == "inspect") {
    Args args(argc - 2, argv + 2, {});
    return inspect(dir);
  }
  if (sub == "verify") {
    Args args(argc - 2, argv + 2, {});
    return verify(dir);
  }
  if (sub == "export") {
    Args args(argc - 2, argv + 2, {"output"});
    return export_weights(dir, args.required("output"));
  }
  std::fputs(kCheckpointUsage, stderr);
  return 2;
}

}  // namespace ternion::cli

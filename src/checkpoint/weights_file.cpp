#include "checkpoint/weights_file.h"

#include <hdf5.h>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "io/durable.h"
#include "io/h5.h"
#include "io/h5_output.h"

namespace ternion::checkpoint {

using io::h5::check_id;
using io::h5::check_rc;
using io::h5::Handle;
using io::h5::QuietErrors;

namespace {

void write_weights_to(const std::string& tmp, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, int64_t>& attributes) {
  // Closed on every path, a full disk included, before this returns.
  io::h5::OutputFile file(tmp, "write_weights");
  QuietErrors quiet;
  for (const auto& [key, value] : attributes) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle attr(check_id(H5Acreate2(file.get(), key.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                         "write_weights", "cannot create attribute in", tmp),
                H5Aclose);
    check_rc(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), "write_weights", "cannot write", tmp);
  }
  for (const NamedTensor& nt : tensors) {
    Tensor t = nt.tensor.to(Device::cpu()).to(DType::f32).contiguous();
    std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    Handle ds(check_id(H5Dcreate2(file.get(), nt.name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT),
                       "write_weights", "cannot create dataset '" + nt.name + "' in", tmp),
              H5Dclose);
    if (t.numel())
      check_rc(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()), "write_weights",
               "cannot write '" + nt.name + "' to", tmp);
    file.check();
  }
  file.close();
}

}  // namespace

void write_weights(const std::string& path, const std::vector<NamedTensor>& tensors,
                   const std::map<std::string, int64_t>& attributes) {
  std::error_code ec;
  TN_CHECK(!std::filesystem::is_directory(path, ec), "write_weights", "cannot write weights to '", path,
           "': it is a directory (name the file to write, e.g. '",
           (std::filesystem::path(path) / "model.h5").lexically_normal().string(), "')");
  const std::filesystem::path tmp = io::tmp_path(path);
  if (auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
  try {
    write_weights_to(tmp.string(), tensors, attributes);
    io::publish(tmp, path, "write_weights");
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void read_weights(const std::string& path, std::vector<NamedTensor>& tensors) {
  QuietErrors quiet;
  TN_CHECK(std::filesystem::exists(path), "read_weights", "no such file '", path, "'");
  Handle file(check_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "read_weights",
                       "cannot open", path),
              H5Fclose);
  std::string problems;
  for (NamedTensor& nt : tensors) {
    if (H5Lexists(file.get(), nt.name.c_str(), H5P_DEFAULT) <= 0) {
      problems += str_cat("\n  missing dataset '", nt.name, "'");
      continue;
    }
    Handle ds(check_id(H5Dopen2(file.get(), nt.name.c_str(), H5P_DEFAULT), "read_weights",
                       "cannot open '" + nt.name + "' in", path),
              H5Dclose);
    Handle space(H5Dget_space(ds.get()), H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    Shape shape(dims.begin(), dims.end());
    if (shape != nt.tensor.shape()) {
      problems += str_cat("\n  '", nt.name, "' has shape ", shape_str(shape), ", the model expects ",
                          shape_str(nt.tensor.shape()));
      continue;
    }
    Tensor buf = Tensor::empty(shape, DType::f32);
    if (buf.numel())
      check_rc(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.raw_data()),
               "read_weights", "cannot read '" + nt.name + "' from", path);
    nt.tensor.copy_(buf);
  }
  TN_CHECK(problems.empty(), "read_weights", "'", path, "' does not fit the model:", problems);
}

std::map<std::string, int64_t> read_weight_attributes(const std::string& path) {
  QuietErrors quiet;
  TN_CHECK(std::filesystem::exists(path), "read_weights", "no such file '", path, "'");
  Handle file(check_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "read_weights",
                       "cannot open", path),
              H5Fclose);
  std::map<std::string, int64_t> out;
  for (const char* key : {"vocab_size", "block_size", "n_layer", "n_head", "n_embd"}) {
    if (H5Aexists(file.get(), key) <= 0) continue;
    Handle attr(H5Aopen(file.get(), key, H5P_DEFAULT), H5Aclose);
    int64_t v = 0;
    check_rc(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), "read_weights", "cannot read attribute", path);
    out[key] = v;
  }
  return out;
}

}  // namespace ternion::checkpoint

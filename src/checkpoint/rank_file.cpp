#include "checkpoint/rank_file.h"

#include <hdf5.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>

#include "checkpoint/format.h"
#include "core/error.h"
#include "io/durable.h"
#include "io/h5.h"
#include "io/h5_output.h"

namespace ternion::checkpoint {

namespace fs = std::filesystem;
using io::h5::check_id;
using io::h5::check_rc;
using io::h5::Handle;
using io::h5::QuietErrors;

namespace {

constexpr const char* kOp = "checkpoint";
constexpr hsize_t kChunkElements = 65536;  // f32: 256 KiB

void write_int_array_attr(hid_t obj, const char* name, const std::vector<int64_t>& v, const std::string& file) {
  const hsize_t n = v.size();
  Handle space(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), kOp,
                       "cannot create attribute in", file),
              H5Aclose);
  if (n) check_rc(H5Awrite(attr.get(), H5T_NATIVE_INT64, v.data()), kOp, "cannot write", file);
}

void write_int_attr(hid_t obj, const char* name, int64_t v, const std::string& file) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), kOp,
                       "cannot create attribute in", file),
              H5Aclose);
  check_rc(H5Awrite(attr.get(), H5T_NATIVE_INT64, &v), kOp, "cannot write", file);
}

void write_string_attr(hid_t obj, const char* name, std::string_view v, const std::string& file) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<size_t>(v.size(), 1));
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(check_id(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), kOp,
                       "cannot create attribute in", file),
              H5Aclose);
  std::string buf(v);
  buf.resize(std::max<size_t>(v.size(), 1), '\0');
  check_rc(H5Awrite(attr.get(), type.get(), buf.data()), kOp, "cannot write", file);
}

void write_dataset(hid_t fh, const Entry& e, const std::string& file) {
  const Tensor& t = e.data;
  QuietErrors quiet;
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose);
  // Chunks of about 256 KiB (whole rows) with HDF5's Fletcher-32 checksum on each, so that
  // a reader needing part of the dataset reads and verifies only the chunks it touches.
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dims.empty() && t.numel() > 0) {
    std::vector<hsize_t> chunk = dims;
    hsize_t row = 1;
    for (size_t d = 1; d < dims.size(); ++d) row *= dims[d];
    chunk[0] = std::clamp<hsize_t>(kChunkElements / std::max<hsize_t>(row, 1), 1, dims[0]);
    check_rc(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), kOp, "cannot chunk '" + e.name + "' in", file);
    check_rc(H5Pset_fletcher32(dcpl.get()), kOp, "cannot add a checksum filter to '" + e.name + "' in", file);
  }
  Handle ds(check_id(H5Dcreate2(fh, e.name.c_str(), H5T_IEEE_F32LE, space.get(), lcpl.get(), dcpl.get(),
                                H5P_DEFAULT),
                     kOp, "cannot create dataset '" + e.name + "' in", file),
            H5Dclose);
  if (t.numel())
    check_rc(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()), kOp,
             "cannot write '" + e.name + "' to", file);
  write_int_array_attr(ds.get(), "global_shape", e.global_shape, file);
  write_int_array_attr(ds.get(), "offsets", e.offsets, file);
}

}  // namespace

std::string rank_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rank_%05d.h5", rank);
  return buf;
}

uint64_t checksum(const Tensor& t) {
  return XXH64(t.raw_data(), static_cast<size_t>(t.numel()) * sizeof(float), 0);
}

FileRecord write_rank_file(const fs::path& dir, int rank, const State& state, RankFileHooks* hooks) {
  FileRecord rec;
  rec.file = rank_file_name(rank);
  rec.rank = rank;
  const fs::path path = dir / rec.file;
  const std::string file = path.string();
  // Closed on every path, a full disk included (io::h5::OutputFile), before this returns.
  io::h5::OutputFile out(file, kOp);
  {
    QuietErrors quiet;
    write_string_attr(out.get(), "format", kFormatName, file);
    write_int_attr(out.get(), "format_version", kFormatVersion, file);
    write_int_attr(out.get(), "step", state.step, file);
    write_int_attr(out.get(), "rank", rank, file);
  }
  for (size_t i = 0; i < state.tensors.size(); ++i) {
    const Entry& e = state.tensors[i];
    const Tensor& t = e.data;
    TN_CHECK(t.dtype() == DType::f32 && t.is_contiguous() && t.device().is_cpu(), kOp, "'", e.name,
             "' must be staged as a contiguous host f32 tensor, got ", t.str());
    if (hooks) hooks->before_dataset(file, static_cast<int>(i), e.name);
    write_dataset(out.get(), e, file);
    out.check();  // a full disk stops the save here, not after the last dataset
    TensorInfo ti;
    ti.file = rec.file;
    ti.name = e.name;
    ti.dtype = "f32";
    ti.global_shape = e.global_shape;
    ti.offsets = e.offsets;
    ti.shape = t.shape();
    ti.xxh64 = checksum(t);
    rec.tensors.push_back(std::move(ti));
  }
  hsize_t reported = 0;
  {
    QuietErrors quiet;
    check_rc(H5Fflush(out.get(), H5F_SCOPE_GLOBAL), kOp, "cannot flush", file);
    check_rc(H5Fget_filesize(out.get(), &reported), kOp, "cannot size", file);
  }
  out.close();
  if (hooks) hooks->after_file(file);
  io::fsync_path(path, /*directory=*/false, kOp);
  rec.bytes = static_cast<int64_t>(fs::file_size(path));
  TN_CHECK(rec.bytes == static_cast<int64_t>(reported), kOp, "short write of '", file, "': ", rec.bytes,
           " bytes on disk, ", reported, " written");
  return rec;
}

Tensor read_dataset(const std::string& dir, const TensorInfo& ti) {
  return RankFileReader((fs::path(dir) / ti.file).string()).read(ti);
}

RankFileReader::RankFileReader(std::string path) : path_(std::move(path)) {
  QuietErrors quiet;
  file_ = check_id(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), kOp, "cannot open", path_);
}

RankFileReader::~RankFileReader() {
  QuietErrors quiet;
  if (file_ >= 0) H5Fclose(file_);
}

std::optional<Tensor> RankFileReader::read_part(const TensorInfo& ti, const std::vector<int64_t>& begin,
                                                const Shape& shape) {
  QuietErrors quiet;
  const std::string& file = path_;
  Handle ds(check_id(H5Dopen2(file_, ti.name.c_str(), H5P_DEFAULT), kOp, "cannot open tensor '" + ti.name + "' in",
                     file),
            H5Dclose);
  Handle dcpl(H5Dget_create_plist(ds.get()), H5Pclose);
  bool checked = false;
  const int nfilters = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nelems = 0;
    if (H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nelems, nullptr, 0, nullptr, &config) ==
        H5Z_FILTER_FLETCHER32)
      checked = true;
  }
  if (!checked) return std::nullopt;
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  TN_CHECK(Shape(dims.begin(), dims.end()) == ti.shape, kOp, "tensor '", ti.name, "' in '", file, "' has shape ",
           shape_str(Shape(dims.begin(), dims.end())), ", the manifest records ", shape_str(ti.shape));
  const std::vector<hsize_t> start(begin.begin(), begin.end()), count(shape.begin(), shape.end());
  check_rc(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), kOp,
           "cannot select part of '" + ti.name + "' in", file);
  Handle mem(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  Tensor buf = Tensor::empty(shape, DType::f32);
  if (buf.numel())
    check_rc(H5Dread(ds.get(), H5T_NATIVE_FLOAT, mem.get(), space.get(), H5P_DEFAULT, buf.raw_data()), kOp,
             "checksum mismatch for tensor '" + ti.name +
                 "' (a chunk failed HDF5's Fletcher-32 check, or it is unreadable: the file is damaged) in",
             file);
  return buf;
}

Tensor RankFileReader::read(const TensorInfo& ti) {
  QuietErrors quiet;
  const std::string& file = path_;
  Handle ds(check_id(H5Dopen2(file_, ti.name.c_str(), H5P_DEFAULT), kOp,
                     "cannot open tensor '" + ti.name + "' in", file),
            H5Dclose);
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const Shape shape(dims.begin(), dims.end());
  TN_CHECK(shape == ti.shape, kOp, "tensor '", ti.name, "' in '", file, "' has shape ", shape_str(shape),
           ", the manifest records ", shape_str(ti.shape));
  Tensor buf = Tensor::empty(shape, DType::f32);
  if (buf.numel())
    check_rc(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.raw_data()), kOp,
             "checksum mismatch for tensor '" + ti.name +
                 "' (a chunk failed HDF5's Fletcher-32 check, or it is unreadable: the file is damaged) in",
             file);
  const uint64_t sum = checksum(buf);
  TN_CHECK(sum == ti.xxh64, kOp, "checksum mismatch for tensor '", ti.name, "' in '", file, "': xxh64 ",
           hex64(sum), ", the manifest records ", hex64(ti.xxh64), " (the file is damaged)");
  return buf;
}

}  // namespace ternion::checkpoint

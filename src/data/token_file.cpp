// HDF5 token files: TokenFileWriter (streaming, atomic) and the HDF5 TokenSource.
#include "data/token_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "io/h5.h"
#include "io/h5_output.h"

namespace ternion::data {
namespace h5 = io::h5;
namespace {

namespace fs = std::filesystem;
using h5::check_id;
using h5::check_rc;
using h5::Handle;

constexpr const char* kDataset = "tokens";

// fsync a file or directory; durability is best-effort for directories (some filesystems
// refuse O_RDONLY fsync on them), but a failing file fsync is an error.
void fsync_path(const std::string& path, bool must, std::string_view op) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  TN_CHECK(ok || !must, op, "fsync of '", path, "' failed");
}

Handle string_type(size_t len) {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), len == 0 ? 1 : len);
  H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

class Hdf5Source final : public TokenSource {
 public:
  explicit Hdf5Source(std::string path) : path_(std::move(path)) {
    constexpr std::string_view op = "open_hdf5_tokens";
    h5::QuietErrors quiet;
    TN_CHECK(fs::is_regular_file(path_), op, "no such file '", path_, "'");
    TN_CHECK(H5Fis_hdf5(path_.c_str()) > 0, op, "'", path_, "' is not an HDF5 file");
    file_ = Handle(check_id(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), op,
                            "cannot open", path_), H5Fclose);
    TN_CHECK(H5Lexists(file_.get(), kDataset, H5P_DEFAULT) > 0, op, "'", path_,
             "' has no /tokens dataset");
    dset_ = Handle(check_id(H5Dopen2(file_.get(), kDataset, H5P_DEFAULT), op,
                            "cannot open /tokens in", path_), H5Dclose);
    Handle type(check_id(H5Dget_type(dset_.get()), op, "cannot read /tokens type in", path_),
                H5Tclose);
    TN_CHECK(H5Tget_class(type.get()) == H5T_INTEGER, op, "/tokens in '", path_,
             "' is not an integer dataset");
    Handle space(check_id(H5Dget_space(dset_.get()), op, "cannot read /tokens shape in", path_),
                 H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    TN_CHECK(rank == 1, op, "/tokens in '", path_, "' has rank ", rank, ", expected 1");
    hsize_t dims[1] = {0};
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    size_ = static_cast<int64_t>(dims[0]);
    vocab_size_ = read_vocab_size();
    if (auto t = h5::read_string_attribute(dset_.get(), "tokenizer", op, path_)) tokenizer_ = *t;
    else if (auto r = h5::read_string_attribute(file_.get(), "tokenizer", op, path_)) tokenizer_ = *r;
  }

  int64_t size() const override { return size_; }
  int64_t vocab_size() const override { return vocab_size_; }
  std::string name() const override { return path_; }
  std::string tokenizer() const override { return tokenizer_; }

  void read(int64_t start, int64_t count, int32_t* out) override {
    constexpr std::string_view op = "TokenSource::read";
    TN_CHECK(start >= 0 && count >= 0 && start <= size_ - count, op, "range [", start, ", ",
             start + count, ") outside the ", size_, " tokens of '", path_, "'");
    if (count == 0) return;
    h5::QuietErrors quiet;
    Handle fspace(check_id(H5Dget_space(dset_.get()), op, "cannot read", path_), H5Sclose);
    const hsize_t offset[1] = {static_cast<hsize_t>(start)};
    const hsize_t n[1] = {static_cast<hsize_t>(count)};
    check_rc(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, offset, nullptr, n, nullptr), op,
             "cannot select tokens in", path_);
    Handle mspace(check_id(H5Screate_simple(1, n, nullptr), op, "cannot read", path_), H5Sclose);
    check_rc(H5Dread(dset_.get(), H5T_NATIVE_INT32, mspace.get(), fspace.get(), H5P_DEFAULT, out),
             op, str_cat("cannot read tokens [", start, ", ", start + count, ") of"), path_);
  }

 private:
  // The int64 attribute `vocab_size`, on /tokens or (for foreign files) on the root group.
  int64_t read_vocab_size() {
    constexpr std::string_view op = "open_hdf5_tokens";
    hid_t owner = dset_.get();
    if (check_rc(H5Aexists(owner, "vocab_size"), op, "cannot query attributes of", path_) == 0) {
      owner = file_.get();
      TN_CHECK(check_rc(H5Aexists(owner, "vocab_size"), op, "cannot query attributes of",
                        path_) > 0,
               op, "'", path_, "' has no vocab_size attribute");
    }
    Handle attr(check_id(H5Aopen(owner, "vocab_size", H5P_DEFAULT), op,
                         "cannot open vocab_size attribute of", path_), H5Aclose);
    int64_t v = 0;
    check_rc(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), op, "cannot read vocab_size of", path_);
    TN_CHECK(v > 0, op, "'", path_, "' has vocab_size ", v, ", expected > 0");
    return v;
  }

  std::string path_;
  Handle file_, dset_;  // dset_ is declared after file_, so it closes first
  int64_t size_ = 0;
  int64_t vocab_size_ = 0;
  std::string tokenizer_;
};

}  // namespace

std::string TokenSource::where(int64_t pos) const {
  return str_cat("'", name(), "' token ", pos);
}

std::unique_ptr<TokenSource> open_hdf5_tokens(const std::string& path) {
  return std::make_unique<Hdf5Source>(path);
}

// ---------------------------------------------------------------------------------------------

struct TokenFileWriter::Impl {
  std::string path, tmp;
  int64_t vocab_size = 0;
  int64_t size = 0;
  bool committed = false;
  std::optional<h5::OutputFile> file;  // closes on every path, a full disk included
  Handle dset;                         // closes before file

  ~Impl() {
    if (committed) return;
    dset.reset();
    file.reset();
    std::error_code ec;
    fs::remove(tmp, ec);
  }
};

TokenFileWriter::TokenFileWriter(std::string path, int64_t vocab_size, std::string_view tokenizer,
                                 int64_t expected_tokens)
    : impl_(std::make_unique<Impl>()) {
  constexpr std::string_view op = "TokenFileWriter";
  TN_CHECK(vocab_size > 0 && vocab_size <= (int64_t{1} << 31), op, "vocab_size ", vocab_size,
           " for '", path, "' must be in [1, 2^31]");
  Impl& s = *impl_;
  s.path = std::move(path);
  s.tmp = s.path + ".tmp";
  s.vocab_size = vocab_size;
  s.file.emplace(s.tmp, op);
  h5::QuietErrors quiet;
  const int64_t chunk_tokens = expected_tokens > 0 ? std::min(expected_tokens, kTokenChunk)
                                                  : kTokenChunk;
  const hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED};
  const hsize_t chunk[1] = {static_cast<hsize_t>(chunk_tokens)};
  Handle space(check_id(H5Screate_simple(1, dims, maxdims), op, "cannot create", s.tmp), H5Sclose);
  Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), op, "cannot create", s.tmp), H5Pclose);
  check_rc(H5Pset_chunk(dcpl.get(), 1, chunk), op, "cannot create", s.tmp);
  const hid_t file_type = vocab_size <= 65536 ? H5T_STD_U16LE : H5T_STD_I32LE;
  s.dset = Handle(check_id(H5Dcreate2(s.file->get(), kDataset, file_type, space.get(), H5P_DEFAULT,
                                      dcpl.get(), H5P_DEFAULT),
                           op, "cannot create /tokens in", s.tmp), H5Dclose);

  Handle scalar(check_id(H5Screate(H5S_SCALAR), op, "cannot write", s.tmp), H5Sclose);
  Handle vattr(check_id(H5Acreate2(s.dset.get(), "vocab_size", H5T_STD_I64LE, scalar.get(),
                                   H5P_DEFAULT, H5P_DEFAULT),
                        op, "cannot write vocab_size to", s.tmp), H5Aclose);
  check_rc(H5Awrite(vattr.get(), H5T_NATIVE_INT64, &vocab_size), op, "cannot write", s.tmp);
  std::string name(tokenizer);
  Handle stype = string_type(name.size());
  name.resize(std::max<size_t>(name.size(), 1), '\0');
  Handle tattr(check_id(H5Acreate2(s.dset.get(), "tokenizer", stype.get(), scalar.get(),
                                   H5P_DEFAULT, H5P_DEFAULT),
                        op, "cannot write tokenizer to", s.tmp), H5Aclose);
  check_rc(H5Awrite(tattr.get(), stype.get(), name.data()), op, "cannot write", s.tmp);
  s.file->check();
}

TokenFileWriter::~TokenFileWriter() = default;

int64_t TokenFileWriter::size() const { return impl_->size; }

void TokenFileWriter::append(std::span<const int32_t> tokens) {
  constexpr std::string_view op = "TokenFileWriter::append";
  Impl& s = *impl_;
  TN_CHECK(!s.committed, op, "'", s.path, "' was already committed");
  for (size_t i = 0; i < tokens.size(); ++i) {
    TN_CHECK(tokens[i] >= 0 && tokens[i] < s.vocab_size, op, "token id ", tokens[i], " at index ",
             s.size + static_cast<int64_t>(i), " of '", s.path, "' is outside [0, ",
             s.vocab_size, ")");
  }
  if (tokens.empty()) return;
  h5::QuietErrors quiet;
  const hsize_t offset[1] = {static_cast<hsize_t>(s.size)};
  const hsize_t n[1] = {tokens.size()};
  const hsize_t new_size[1] = {offset[0] + n[0]};
  check_rc(H5Dset_extent(s.dset.get(), new_size), op, "cannot grow /tokens in", s.tmp);
  Handle fspace(check_id(H5Dget_space(s.dset.get()), op, "cannot write", s.tmp), H5Sclose);
  check_rc(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, offset, nullptr, n, nullptr), op,
           "cannot write", s.tmp);
  Handle mspace(check_id(H5Screate_simple(1, n, nullptr), op, "cannot write", s.tmp), H5Sclose);
  check_rc(H5Dwrite(s.dset.get(), H5T_NATIVE_INT32, mspace.get(), fspace.get(), H5P_DEFAULT,
                    tokens.data()),
           op, "cannot write tokens to", s.tmp);
  s.file->check();  // a full disk stops here, not after the whole input
  s.size += static_cast<int64_t>(tokens.size());
}

void TokenFileWriter::commit() {
  constexpr std::string_view op = "TokenFileWriter::commit";
  Impl& s = *impl_;
  TN_CHECK(!s.committed, op, "'", s.path, "' was already committed");
  std::string why;
  if (!s.dset.reset(&why)) fail(op, str_cat("cannot close /tokens in '", s.tmp, "': ", why));
  s.file->close();
  fsync_path(s.tmp, /*must=*/true, op);
  std::error_code ec;
  fs::rename(s.tmp, s.path, ec);
  TN_CHECK(!ec, op, "cannot rename '", s.tmp, "' to '", s.path, "': ", ec.message());
  s.committed = true;
  const fs::path parent = fs::path(s.path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), /*must=*/false, op);
}

void write_token_file(const std::string& path, std::span<const int32_t> tokens,
                      int64_t vocab_size, std::string_view tokenizer) {
  TokenFileWriter writer(path, vocab_size, tokenizer, static_cast<int64_t>(tokens.size()));
  writer.append(tokens);
  writer.commit();
}

std::string hdf5_library_version() { return h5::library_version(); }

}  // namespace ternion::data

// TokenSources other than HDF5: llm.c .bin shards, concatenation, and the glob front door.
#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/token_file.h"

namespace ternion::data {
namespace {

static_assert(std::endian::native == std::endian::little,
              ".bin shards are little-endian; this reader maps them without byte swaps");

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A read-only mapping of a whole file; unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  ~Mapping() {
    if (addr_ != nullptr) ::munmap(addr_, len_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const char* data() const { return static_cast<const char*>(addr_); }

 private:
  void* addr_ = nullptr;
  size_t len_ = 0;
};

class BinSource final : public TokenSource {
 public:
  BinSource(std::string path, int64_t vocab_size) : path_(std::move(path)), vocab_(vocab_size) {
    constexpr std::string_view op = "open_bin_tokens";
    TN_CHECK(vocab_ > 0 && vocab_ <= 65536, op, "vocab_size ", vocab_, " for '", path_,
             "' must be in [1, 65536] (tokens are uint16)");
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      const int err = errno;
      fail(op, err == ENOENT ? str_cat("no such file '", path_, "'")
                             : str_cat("cannot open '", path_, "': ", std::strerror(err)));
    }
    struct stat st {};
    TN_CHECK(::fstat(fd.get(), &st) == 0, op, "cannot stat '", path_, "': ", std::strerror(errno));
    const int64_t file_bytes = st.st_size;
    constexpr int64_t header_bytes = kBinHeaderInts * 4;
    TN_CHECK(file_bytes >= header_bytes, op, "'", path_, "' is truncated: ", file_bytes,
             " bytes, shorter than the ", header_bytes, "-byte header");
    int32_t header[kBinHeaderInts];
    TN_CHECK(::pread(fd.get(), header, header_bytes, 0) == header_bytes, op,
             "cannot read the header of '", path_, "'");
    TN_CHECK(header[0] == kBinMagic, op, "'", path_, "' has bad magic ", header[0], ", expected ",
             kBinMagic, " (not an llm.c token shard?)");
    TN_CHECK(header[1] == kBinVersion, op, "'", path_, "' has version ", header[1],
             ", only version ", kBinVersion, " (uint16 tokens) is supported");
    size_ = header[2];
    TN_CHECK(size_ >= 0, op, "'", path_, "' has negative token count ", size_);
    const int64_t need = header_bytes + 2 * size_;
    TN_CHECK(file_bytes >= need, op, "'", path_, "' is truncated: header says ", size_,
             " tokens (", need, " bytes) but the file has ", file_bytes, " bytes");
    void* addr = ::mmap(nullptr, static_cast<size_t>(need), PROT_READ, MAP_SHARED, fd.get(), 0);
    TN_CHECK(addr != MAP_FAILED, op, "cannot mmap '", path_, "': ", std::strerror(errno));
    map_ = std::make_unique<Mapping>(addr, static_cast<size_t>(need));
    tokens_ = reinterpret_cast<const uint16_t*>(map_->data() + header_bytes);
  }

  int64_t size() const override { return size_; }
  int64_t vocab_size() const override { return vocab_; }
  std::string name() const override { return path_; }

  void read(int64_t start, int64_t count, int32_t* out) override {
    TN_CHECK(start >= 0 && count >= 0 && start <= size_ - count, "TokenSource::read", "range [",
             start, ", ", start + count, ") outside the ", size_, " tokens of '", path_, "'");
    std::copy(tokens_ + start, tokens_ + start + count, out);
  }

 private:
  std::string path_;
  int64_t vocab_;
  int64_t size_ = 0;
  std::unique_ptr<Mapping> map_;
  const uint16_t* tokens_ = nullptr;
};

class ConcatSource final : public TokenSource {
 public:
  explicit ConcatSource(std::vector<std::unique_ptr<TokenSource>> parts) : parts_(std::move(parts)) {
    TN_CHECK(!parts_.empty(), "concat_tokens", "no sources to concatenate");
    offsets_.push_back(0);
    for (const auto& p : parts_) {
      TN_CHECK(p->vocab_size() == parts_[0]->vocab_size(), "concat_tokens", "'", p->name(),
               "' has vocab_size ", p->vocab_size(), " but '", parts_[0]->name(), "' has ",
               parts_[0]->vocab_size());
      offsets_.push_back(offsets_.back() + p->size());
    }
  }

  int64_t size() const override { return offsets_.back(); }
  int64_t vocab_size() const override { return parts_[0]->vocab_size(); }
  std::string name() const override {
    return str_cat(parts_.size(), " shards '", parts_.front()->name(), "' .. '",
                        parts_.back()->name(), "'");
  }
  std::string where(int64_t pos) const override {
    const size_t i = part_of(pos);
    return parts_[i]->where(pos - offsets_[i]);
  }
  std::string tokenizer() const override {
    for (const auto& p : parts_)
      if (p->tokenizer() != parts_[0]->tokenizer()) return "";
    return parts_[0]->tokenizer();
  }

  void read(int64_t start, int64_t count, int32_t* out) override {
    TN_CHECK(start >= 0 && count >= 0 && start <= size() - count, "TokenSource::read", "range [",
             start, ", ", start + count, ") outside the ", size(), " tokens of ", name());
    while (count > 0) {
      const size_t i = part_of(start);
      const int64_t n = std::min(count, offsets_[i + 1] - start);
      parts_[i]->read(start - offsets_[i], n, out);
      start += n;
      count -= n;
      out += n;
    }
  }

 private:
  // Index of the part holding token `pos` (skips empty parts). REQUIRES: 0 <= pos < size().
  size_t part_of(int64_t pos) const {
    auto it = std::upper_bound(offsets_.begin(), offsets_.end(), pos);
    return static_cast<size_t>(it - offsets_.begin()) - 1;
  }

  std::vector<std::unique_ptr<TokenSource>> parts_;
  std::vector<int64_t> offsets_;  // (parts + 1): offsets_[i] = first token of part i
};

class GlobResult {
 public:
  GlobResult() = default;
  ~GlobResult() { globfree(&g_); }
  GlobResult(const GlobResult&) = delete;
  GlobResult& operator=(const GlobResult&) = delete;
  glob_t* get() { return &g_; }

 private:
  glob_t g_{};
};

std::vector<std::string> expand(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  GlobResult g;
  const int rc = ::glob(pattern.c_str(), 0, nullptr, g.get());
  TN_CHECK(rc != GLOB_NOMATCH, "open_token_source", "no files match '", pattern, "'");
  TN_CHECK(rc == 0, "open_token_source", "cannot expand '", pattern, "' (glob error ", rc, ")");
  std::vector<std::string> paths(g.get()->gl_pathv, g.get()->gl_pathv + g.get()->gl_pathc);
  std::sort(paths.begin(), paths.end());  // byte order, independent of the locale
  return paths;
}

}  // namespace

std::unique_ptr<TokenSource> open_bin_tokens(const std::string& path, int64_t vocab_size) {
  return std::make_unique<BinSource>(path, vocab_size);
}

std::unique_ptr<TokenSource> concat_tokens(std::vector<std::unique_ptr<TokenSource>> parts) {
  return std::make_unique<ConcatSource>(std::move(parts));
}

std::unique_ptr<TokenSource> open_token_source(const std::string& pattern,
                                               const TokenSourceOptions& options) {
  std::vector<std::unique_ptr<TokenSource>> parts;
  for (const std::string& path : expand(pattern)) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".h5" || ext == ".hdf5") {
      parts.push_back(open_hdf5_tokens(path));
    } else if (ext == ".bin") {
      parts.push_back(open_bin_tokens(path, options.bin_vocab_size));
    } else {
      fail("open_token_source", str_cat("'", path, "' has unknown extension '", ext,
                                             "'; expected .h5, .hdf5 or .bin"));
    }
  }
  if (parts.size() == 1) return std::move(parts[0]);
  return concat_tokens(std::move(parts));
}

}  // namespace ternion::data

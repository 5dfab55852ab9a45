// Token files: where training tokens live on disk, and the TokenSource interface that the
// sampler reads them through.
//
// HDF5 token file (written here, read by Hdf5 source):
//   /tokens          1-D dataset, uint16 when vocab_size <= 65536 else int32, chunked
//                    (kTokenChunk tokens per chunk, fewer for small files), extendable.
//   /tokens@vocab_size   int64 attribute; every token is in [0, vocab_size).
//   /tokens@tokenizer    string attribute, e.g. "byte" (may be absent in foreign files).
// llm.c / nanoGPT shard (.bin, read only): 256 little-endian int32 header with
//   header[0] = 20240520 (magic), header[1] = 1 (version), header[2] = token count,
//   followed by `count` little-endian uint16 tokens.
//
// Error policy: every failure (missing file, bad magic, truncated shard, missing /tokens, an
// HDF5 call failing) throws ternion::Error whose message names the file.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ternion::data {

inline constexpr int64_t kTokenChunk = int64_t{1} << 20;  // tokens per HDF5 chunk
inline constexpr int32_t kBinMagic = 20240520;
inline constexpr int32_t kBinVersion = 1;
inline constexpr int64_t kBinHeaderInts = 256;

// A read-only, random-access sequence of token ids.
// Thread safety: none; one object must not be read from two threads at once (HDF5 itself is
// not thread-safe in the MPI build), and two HDF5 sources must not be read concurrently either.
class TokenSource {
 public:
  virtual ~TokenSource() = default;

  // Number of tokens.
  virtual int64_t size() const = 0;

  // Upper bound on token ids: the file's vocab_size attribute (HDF5) or the value given at
  // open time (.bin, default 65536).
  virtual int64_t vocab_size() const = 0;

  // Copies tokens [start, start+count) into out[0, count).
  // REQUIRES: 0 <= start, 0 <= count, start + count <= size(); else throws ternion::Error.
  // Throws ternion::Error naming the file on an I/O failure.
  virtual void read(int64_t start, int64_t count, int32_t* out) = 0;

  // Human-readable origin, used in error messages: the path, or a list of shards.
  virtual std::string name() const = 0;

  // Where token `pos` comes from, e.g. "'a.bin' token 17"; for error messages.
  virtual std::string where(int64_t pos) const;

  // The `tokenizer` attribute of an HDF5 file; "" when unknown.
  virtual std::string tokenizer() const { return ""; }
};

struct TokenSourceOptions {
  // vocab_size reported by .bin shards, whose header does not record it.
  int64_t bin_vocab_size = 65536;
};

// Opens an HDF5 token file. Reads only metadata now; read() reads hyperslabs.
std::unique_ptr<TokenSource> open_hdf5_tokens(const std::string& path);

// Opens an llm.c .bin shard (memory-mapped). Validates magic, version and that the file
// holds the header's token count.
std::unique_ptr<TokenSource> open_bin_tokens(const std::string& path, int64_t vocab_size = 65536);

// Concatenates `parts` in order. vocab_size() is the parts' common vocab_size; parts that
// disagree are an error. REQUIRES: parts non-empty.
std::unique_ptr<TokenSource> concat_tokens(std::vector<std::unique_ptr<TokenSource>> parts);

// Opens `pattern`: a path, or a glob (*, ?, [..]) of shards that are sorted by name and
// concatenated. The format is chosen per file by extension: .h5/.hdf5 -> HDF5, .bin -> llm.c.
// Throws when nothing matches or an extension is unknown.
std::unique_ptr<TokenSource> open_token_source(const std::string& pattern,
                                               const TokenSourceOptions& options = {});

// Streams tokens into an HDF5 token file. The data goes to `path + ".tmp"`; commit() renames
// it over `path` after an fsync, so `path` is either absent/old or complete, never partial.
// Not thread-safe.
class TokenFileWriter {
 public:
  // Creates `path`.tmp (replacing a stale one). REQUIRES: 0 < vocab_size <= 2^31.
  // `expected_tokens` > 0 shrinks the chunk to fit small files (a hint; appending more is fine).
  TokenFileWriter(std::string path, int64_t vocab_size, std::string_view tokenizer,
                  int64_t expected_tokens = 0);
  // Without commit(): closes and deletes the .tmp file. Never throws.
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // Appends `tokens`. Throws, naming the index, when a token is outside [0, vocab_size).
  void append(std::span<const int32_t> tokens);
  // Tokens appended so far.
  int64_t size() const;
  // Closes, fsyncs and renames the file into place. REQUIRES: called at most once.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes `tokens` to an HDF5 token file at `path` atomically (see TokenFileWriter).
void write_token_file(const std::string& path, std::span<const int32_t> tokens,
                      int64_t vocab_size, std::string_view tokenizer);

// "1.10.8": the HDF5 library this process runs with.
std::string hdf5_library_version();

}  // namespace ternion::data

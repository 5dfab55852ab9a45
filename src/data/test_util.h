// Helpers shared by the data tests: a temporary directory, a .bin shard writer that follows
// llm.c's format independently of the reader, and an in-memory TokenSource.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/token_file.h"

namespace ternion::data::testing {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/ternion_data_test_XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Writes an llm.c shard; `header_count` overrides header[2] (to fake truncation).
inline void write_bin(const std::string& path, const std::vector<uint16_t>& tokens,
                      int32_t magic = kBinMagic, int32_t version = kBinVersion,
                      int64_t header_count = -1) {
  std::vector<int32_t> header(kBinHeaderInts, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = static_cast<int32_t>(header_count >= 0 ? header_count : int64_t(tokens.size()));
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), kBinHeaderInts * 4);
  out.write(reinterpret_cast<const char*>(tokens.data()),
            static_cast<std::streamsize>(tokens.size() * 2));
}

// Tokens held in memory; a fake for sampler tests.
class VectorSource final : public TokenSource {
 public:
  VectorSource(std::vector<int32_t> tokens, int64_t vocab_size)
      : tokens_(std::move(tokens)), vocab_(vocab_size) {}
  int64_t size() const override { return static_cast<int64_t>(tokens_.size()); }
  int64_t vocab_size() const override { return vocab_; }
  std::string name() const override { return "memory"; }
  void read(int64_t start, int64_t count, int32_t* out) override {
    ASSERT_LE(start + count, size());
    std::copy(tokens_.begin() + start, tokens_.begin() + start + count, out);
  }

 private:
  std::vector<int32_t> tokens_;
  int64_t vocab_;
};

// Runs `fn`, expecting a ternion::Error whose message contains every string in `parts`.
template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected ternion::Error";
  } catch (const ternion::Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
        << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

}  // namespace ternion::data::testing

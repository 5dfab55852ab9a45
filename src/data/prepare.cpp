#include "data/prepare.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "io/paths.h"

namespace ternion::data {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

PrepareStats prepare_text(const std::string& input_txt, const std::string& output_train,
                          const std::string& output_val, double val_fraction,
                          const ProgressCallback& progress, int64_t chunk_bytes) {
  constexpr std::string_view op = "prepare_text";
  TN_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, op, "val_fraction ", val_fraction,
           " must be in [0, 1)");
  TN_CHECK(chunk_bytes > 0, op, "chunk_bytes ", chunk_bytes, " must be > 0");
  TN_CHECK(output_train != output_val, op, "train and val outputs are the same file '",
           output_train, "'");
  // Before anything is written: an output over the input would destroy the corpus.
  for (const std::string& output : {output_train, output_val}) io::refuse_output_over_inputs(output, {input_txt}, op);
  std::error_code ec;
  TN_CHECK(std::filesystem::is_regular_file(input_txt, ec), op, "no such file '", input_txt, "'");
  std::unique_ptr<std::FILE, FileCloser> in(std::fopen(input_txt.c_str(), "rb"));
  TN_CHECK(in != nullptr, op, "cannot open '", input_txt, "': ", std::strerror(errno));
  const auto file_size = std::filesystem::file_size(input_txt, ec);
  TN_CHECK(!ec, op, "cannot stat '", input_txt, "': ", ec.message());
  const int64_t total = static_cast<int64_t>(file_size);
  TN_CHECK(total > 0, op, "'", input_txt, "' is empty");

  // The byte tokenizer emits one token per byte, so the split point is known up front.
  PrepareStats stats;
  stats.input_bytes = total;
  stats.val_tokens = static_cast<int64_t>(std::floor(val_fraction * static_cast<double>(total)));
  stats.train_tokens = total - stats.val_tokens;

  const ByteTokenizer tok;
  TokenFileWriter train(output_train, tok.vocab_size(), tok.name(), stats.train_tokens);
  TokenFileWriter val(output_val, tok.vocab_size(), tok.name(), stats.val_tokens);
  std::string buf(static_cast<size_t>(chunk_bytes), '\0');
  std::vector<int32_t> ids;
  int64_t done = 0;
  while (done < total) {
    const size_t want = static_cast<size_t>(std::min(chunk_bytes, total - done));
    const size_t got = std::fread(buf.data(), 1, want, in.get());
    TN_CHECK(got == want, op, "cannot read '", input_txt, "' at byte ", done + int64_t(got),
             std::ferror(in.get()) ? ": read error" : ": file shrank while reading");
    ids.clear();
    tok.encode_append(std::string_view(buf.data(), got), ids);
    // Tokens [done, done + got) straddle the split at train_tokens at most once.
    const int64_t to_train = std::clamp<int64_t>(stats.train_tokens - done, 0, int64_t(got));
    train.append(std::span<const int32_t>(ids).first(static_cast<size_t>(to_train)));
    val.append(std::span<const int32_t>(ids).subspan(static_cast<size_t>(to_train)));
    done += static_cast<int64_t>(got);
    if (progress) progress(done, total);
  }
  // Commit val first: a train file on disk then implies its val file is complete too.
  val.commit();
  train.commit();
  return stats;
}

}  // namespace ternion::data

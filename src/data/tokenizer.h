// Byte-level tokenizer: every byte of the UTF-8 (or any) input is one token, id = byte value.
// Vocabulary 256; no merges, no special tokens. Lossless for arbitrary bytes, which makes it
// the tokenizer of the tests and of small character-level runs (e.g. Shakespeare).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ternion::data {

class ByteTokenizer {
 public:
  static constexpr int64_t kVocabSize = 256;
  // Recorded in token files' `tokenizer` attribute.
  static constexpr std::string_view kName = "byte";

  int64_t vocab_size() const { return kVocabSize; }
  std::string_view name() const { return kName; }

  // Returns one id in [0, 256) per byte of `text`, in order. Never fails.
  std::vector<int32_t> encode(std::string_view text) const;

  // Appends the ids of `text` to `out` (for streaming without reallocating per chunk).
  void encode_append(std::string_view text, std::vector<int32_t>& out) const;

  // Returns the bytes of `ids`. Throws ternion::Error naming the id and its index when an id
  // is outside [0, 256). decode(encode(s)) == s for every s.
  std::string decode(std::span<const int32_t> ids) const;
};

}  // namespace ternion::data

#include "data/tokenizer.h"

#include "core/error.h"

namespace ternion::data {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode_append(text, ids);
  return ids;
}

void ByteTokenizer::encode_append(std::string_view text, std::vector<int32_t>& out) const {
  out.reserve(out.size() + text.size());
  for (char c : text) out.push_back(static_cast<unsigned char>(c));
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  text.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    TN_CHECK(ids[i] >= 0 && ids[i] < kVocabSize, "ByteTokenizer::decode", "token id ", ids[i],
             " at index ", i, " is outside the byte vocabulary [0, ", kVocabSize, ")");
    text[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
  }
  return text;
}

}  // namespace ternion::data

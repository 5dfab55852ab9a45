#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/test_util.h"

namespace ternion::data {
namespace {

using testing::expect_error;

TEST(ByteTokenizer, EncodesBytes) {
  ByteTokenizer tok;
  EXPECT_EQ(tok.vocab_size(), 256);
  EXPECT_EQ(tok.encode("ab\n"), (std::vector<int32_t>{97, 98, 10}));
  EXPECT_EQ(tok.encode("\xc3\xa9"), (std::vector<int32_t>{0xc3, 0xa9}));  // "é" in UTF-8
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(ByteTokenizer, RoundTripsEveryByte) {
  ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string text = all + "To be, or not to be \xe2\x80\x94 that is the question." + all;
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

TEST(ByteTokenizer, DecodeRejectsIdsOutsideVocab) {
  ByteTokenizer tok;
  expect_error([&] { tok.decode(std::vector<int32_t>{65, 256}); }, {"id 256", "index 1"});
  expect_error([&] { tok.decode(std::vector<int32_t>{-1}); }, {"id -1", "index 0"});
}

}  // namespace
}  // namespace ternion::data

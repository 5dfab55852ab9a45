#include "data/token_file.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "data/test_util.h"

namespace ternion::data {
namespace {

using testing::expect_error;
using testing::TempDir;
using testing::write_bin;

std::vector<int32_t> read_all(TokenSource& src) {
  std::vector<int32_t> out(static_cast<size_t>(src.size()));
  src.read(0, src.size(), out.data());
  return out;
}

std::vector<int32_t> pattern_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = static_cast<int32_t>((i * 7919 + 13) % vocab);
  return t;
}

// The on-disk type of /tokens, read with the HDF5 API directly.
H5T_class_t disk_type(const std::string& path, size_t* bytes, H5T_sign_t* sign) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
  hid_t t = H5Dget_type(d);
  const H5T_class_t cls = H5Tget_class(t);
  *bytes = H5Tget_size(t);
  *sign = H5Tget_sign(t);
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
  return cls;
}

TEST(TokenFile, Hdf5RoundTripWithAttributes) {
  TempDir dir;
  const std::string path = dir.file("train.h5");
  const auto tokens = pattern_tokens(5000, 256);
  write_token_file(path, tokens, 256, "byte");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto src = open_hdf5_tokens(path);
  EXPECT_EQ(src->size(), 5000);
  EXPECT_EQ(src->vocab_size(), 256);
  EXPECT_EQ(src->tokenizer(), "byte");
  EXPECT_EQ(src->name(), path);
  EXPECT_EQ(read_all(*src), tokens);
  std::vector<int32_t> part(10);
  src->read(4990, 10, part.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), tokens.begin() + 4990));
  expect_error([&] { src->read(4995, 10, part.data()); }, {"[4995, 5005)", path});

  size_t bytes = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;
  EXPECT_EQ(disk_type(path, &bytes, &sign), H5T_INTEGER);
  EXPECT_EQ(bytes, 2u);
  EXPECT_EQ(sign, H5T_SGN_NONE);
}

TEST(TokenFile, LargeVocabIsStoredAsInt32AcrossChunks) {
  TempDir dir;
  const std::string path = dir.file("big.h5");
  const int64_t n = kTokenChunk + 1234;  // spans two chunks
  const auto tokens = pattern_tokens(n, 100000);
  write_token_file(path, tokens, 100000, "");
  auto src = open_token_source(path);
  EXPECT_EQ(src->vocab_size(), 100000);
  EXPECT_EQ(src->tokenizer(), "");
  EXPECT_EQ(read_all(*src), tokens);
  std::vector<int32_t> part(100);
  src->read(kTokenChunk - 50, 100, part.data());  // straddles the chunk boundary
  EXPECT_TRUE(std::equal(part.begin(), part.end(), tokens.begin() + (kTokenChunk - 50)));
  size_t bytes = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;
  disk_type(path, &bytes, &sign);
  EXPECT_EQ(bytes, 4u);
  EXPECT_EQ(sign, H5T_SGN_2);
}

TEST(TokenFile, WriterAppendsAndLeavesNothingWithoutCommit) {
  TempDir dir;
  const std::string path = dir.file("w.h5");
  {
    TokenFileWriter w(path, 256, "byte");
    w.append(std::vector<int32_t>{1, 2, 3});
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  TokenFileWriter w(path, 256, "byte");
  w.append(std::vector<int32_t>{1, 2});
  w.append(std::vector<int32_t>{});
  w.append(std::vector<int32_t>{3});
  expect_error([&] { w.append(std::vector<int32_t>{4, 256}); }, {"id 256", "index 4", "256)"});
  EXPECT_EQ(w.size(), 3);
  w.commit();
  EXPECT_EQ(read_all(*open_hdf5_tokens(path)), (std::vector<int32_t>{1, 2, 3}));
}

TEST(TokenFile, Hdf5ErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = dir.file("missing.h5");
  expect_error([&] { open_hdf5_tokens(missing); }, {"no such file", missing});
  expect_error([&] { open_token_source(missing); }, {"no such file", missing});

  const std::string text = dir.file("text.h5");
  std::ofstream(text) << "not hdf5";
  expect_error([&] { open_hdf5_tokens(text); }, {"not an HDF5 file", text});

  const std::string other = dir.file("other.h5");  // valid HDF5 without /tokens
  hid_t f = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[1] = {4};
  hid_t s = H5Screate_simple(1, dims, nullptr);
  hid_t d = H5Dcreate2(f, "ids", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
  expect_error([&] { open_hdf5_tokens(other); }, {"no /tokens dataset", other});
}

// A file as another tool (h5py) might write it: contiguous int32 /tokens, vocab_size as an
// int32 attribute of the root group, tokenizer as a variable-length string.
TEST(TokenFile, ReadsForeignHdf5Layout) {
  TempDir dir;
  const std::string path = dir.file("foreign.h5");
  const std::vector<int32_t> tokens = {5, 0, 50256, 17};
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[1] = {tokens.size()};
  hid_t s = H5Screate_simple(1, dims, nullptr);
  hid_t d = H5Dcreate2(f, "tokens", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data());
  hid_t scalar = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "vocab_size", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  const int32_t vocab = 50257;
  H5Awrite(a, H5T_NATIVE_INT32, &vocab);
  hid_t vstr = H5Tcopy(H5T_C_S1);
  H5Tset_size(vstr, H5T_VARIABLE);
  hid_t t = H5Acreate2(d, "tokenizer", vstr, scalar, H5P_DEFAULT, H5P_DEFAULT);
  const char* name = "gpt2";
  H5Awrite(t, vstr, &name);
  for (hid_t id : {t, a}) H5Aclose(id);
  H5Tclose(vstr);
  for (hid_t id : {scalar, s}) H5Sclose(id);
  H5Dclose(d);
  H5Fclose(f);

  auto src = open_token_source(path);
  EXPECT_EQ(src->vocab_size(), 50257);
  EXPECT_EQ(src->tokenizer(), "gpt2");
  EXPECT_EQ(read_all(*src), tokens);
}

// The ways a string attribute can be stored: h5py writes a Python str as a variable-length
// UTF-8 string, numpy bytes as fixed-length ASCII; other tools pad with NULs or spaces.
struct StringStorage {
  const char* label;
  bool variable;
  H5T_cset_t cset;
  H5T_str_t pad;
};
void PrintTo(const StringStorage& s, std::ostream* os) { *os << s.label; }

void write_string_attr(hid_t obj, const char* name, const std::string& value, const StringStorage& how) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_cset(type, how.cset);
  hid_t scalar = H5Screate(H5S_SCALAR);
  if (how.variable) {
    H5Tset_size(type, H5T_VARIABLE);
    hid_t a = H5Acreate2(obj, name, type, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = value.c_str();
    H5Awrite(a, type, &p);
    H5Aclose(a);
  } else {
    std::string buf = value;
    if (how.pad == H5T_STR_NULLTERM) buf.push_back('\0');
    if (how.pad == H5T_STR_SPACEPAD) buf += "   ";  // trailing pad, not part of the value
    H5Tset_size(type, buf.size());
    H5Tset_strpad(type, how.pad);
    hid_t a = H5Acreate2(obj, name, type, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, buf.data());
    H5Aclose(a);
  }
  H5Sclose(scalar);
  H5Tclose(type);
}

class StringAttributes : public ::testing::TestWithParam<StringStorage> {};

// A token file as h5py writes it (`f.create_dataset("tokens", data=a)`, `attrs["tokenizer"]
// = "gpt2"`), the tokenizer on /tokens or on the root group, in every string storage.
TEST_P(StringAttributes, TokenizerIsReadWhateverItsStorage) {
  TempDir dir;
  const std::vector<int32_t> tokens = {1, 2, 3};
  for (const bool on_root : {false, true}) {
    const std::string path = dir.file(on_root ? "root.h5" : "dataset.h5");
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {tokens.size()};
    hid_t s = H5Screate_simple(1, dims, nullptr);
    hid_t d = H5Dcreate2(f, "tokens", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data());
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "vocab_size", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const int64_t vocab = 50257;
    H5Awrite(a, H5T_NATIVE_INT64, &vocab);
    H5Aclose(a);
    H5Sclose(scalar);
    write_string_attr(on_root ? f : d, "tokenizer", "gpt2", GetParam());
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);

    auto src = open_token_source(path);
    EXPECT_EQ(src->tokenizer(), "gpt2") << GetParam().label << (on_root ? " on /" : " on /tokens");
    EXPECT_EQ(src->vocab_size(), 50257);
    EXPECT_EQ(read_all(*src), tokens);
  }
}

INSTANTIATE_TEST_SUITE_P(
    TokenFile, StringAttributes,
    ::testing::Values(StringStorage{"h5py_str", true, H5T_CSET_UTF8, H5T_STR_NULLTERM},
                      StringStorage{"variable_ascii", true, H5T_CSET_ASCII, H5T_STR_NULLTERM},
                      StringStorage{"fixed_ascii_nullterm", false, H5T_CSET_ASCII, H5T_STR_NULLTERM},
                      StringStorage{"fixed_ascii_nullpad", false, H5T_CSET_ASCII, H5T_STR_NULLPAD},
                      StringStorage{"fixed_utf8_nullpad", false, H5T_CSET_UTF8, H5T_STR_NULLPAD},
                      StringStorage{"fixed_ascii_spacepad", false, H5T_CSET_ASCII, H5T_STR_SPACEPAD}),
    [](const ::testing::TestParamInfo<StringStorage>& info) { return std::string(info.param.label); });

TEST(TokenFile, BinShardRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("shard.bin");
  std::vector<uint16_t> tokens = {0, 1, 50256, 65535, 7, 42};
  write_bin(path, tokens);
  auto src = open_token_source(path);
  EXPECT_EQ(src->size(), 6);
  EXPECT_EQ(src->vocab_size(), 65536);
  EXPECT_EQ(read_all(*src), (std::vector<int32_t>{0, 1, 50256, 65535, 7, 42}));
  std::vector<int32_t> part(2);
  src->read(2, 2, part.data());
  EXPECT_EQ(part, (std::vector<int32_t>{50256, 65535}));
  EXPECT_EQ(open_bin_tokens(path, 50257)->vocab_size(), 50257);
}

TEST(TokenFile, BinShardErrorsNameTheFile) {
  TempDir dir;
  const std::string missing = dir.file("missing.bin");
  expect_error([&] { open_bin_tokens(missing); }, {"no such file", missing});

  const std::string bad_magic = dir.file("magic.bin");
  write_bin(bad_magic, {1, 2, 3}, /*magic=*/12345);
  expect_error([&] { open_bin_tokens(bad_magic); }, {"bad magic 12345", "20240520", bad_magic});

  const std::string version = dir.file("version.bin");
  write_bin(version, {1, 2, 3}, kBinMagic, /*version=*/7);
  expect_error([&] { open_bin_tokens(version); }, {"version 7", version});

  const std::string truncated = dir.file("truncated.bin");
  write_bin(truncated, {1, 2, 3}, kBinMagic, kBinVersion, /*header_count=*/1000);
  expect_error([&] { open_bin_tokens(truncated); },
               {"truncated", "1000 tokens", "1030 bytes", truncated});

  const std::string tiny = dir.file("tiny.bin");
  std::ofstream(tiny) << "abc";
  expect_error([&] { open_bin_tokens(tiny); }, {"truncated", "3 bytes", tiny});
}

TEST(TokenFile, GlobConcatenatesSortedShards) {
  TempDir dir;
  // Written out of order: the glob sorts by name.
  write_bin(dir.file("train_001.bin"), {10, 11, 12});
  write_bin(dir.file("train_000.bin"), {0, 1, 2, 3});
  write_bin(dir.file("val_000.bin"), {99});
  auto src = open_token_source(dir.file("train_*.bin"));
  EXPECT_EQ(src->size(), 7);
  EXPECT_EQ(read_all(*src), (std::vector<int32_t>{0, 1, 2, 3, 10, 11, 12}));
  std::vector<int32_t> part(3);
  src->read(3, 3, part.data());  // across the shard boundary
  EXPECT_EQ(part, (std::vector<int32_t>{3, 10, 11}));
  EXPECT_NE(src->where(5).find("train_001.bin' token 1"), std::string::npos) << src->where(5);
  EXPECT_NE(src->name().find("2 shards"), std::string::npos);
  expect_error([&] { src->read(5, 3, part.data()); }, {"[5, 8)"});

  // Formats mix by extension when the vocab sizes agree.
  write_token_file(dir.file("train_002.h5"), std::vector<int32_t>{20, 21}, 65536, "gpt2");
  EXPECT_EQ(read_all(*open_token_source(dir.file("train_*"))),
            (std::vector<int32_t>{0, 1, 2, 3, 10, 11, 12, 20, 21}));
}

TEST(TokenFile, GlobErrors) {
  TempDir dir;
  expect_error([&] { open_token_source(dir.file("nothing_*.bin")); }, {"no files match"});
  std::ofstream(dir.file("x.txt")) << "hi";
  expect_error([&] { open_token_source(dir.file("x.*")); }, {"unknown extension '.txt'"});
  write_bin(dir.file("a.bin"), {1});
  write_token_file(dir.file("b.h5"), std::vector<int32_t>{1}, 256, "byte");
  expect_error([&] { open_token_source(dir.file("[ab].*")); }, {"vocab_size 256", "65536"});
}

}  // namespace
}  // namespace ternion::data

#include "io/h5.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "core/error.h"

namespace ternion::io::h5 {
namespace {

TEST(H5, CheckIdNamesOperationFileAndHdf5Reason) {
  const std::string path = "/nonexistent_dir_for_ternion/x.h5";
  QuietErrors quiet;
  try {
    check_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open_tokens", "cannot open", path);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[open_tokens] cannot open '" + path + "': ", 0), 0u) << what;
    EXPECT_GT(what.size(), path.size() + 30) << "HDF5's reason is missing: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(check_rc(0, "op", "x", path), 0);
}

TEST(H5, HandleClosesOnceAndMoves) {
  Handle a(H5Screate(H5S_SCALAR), H5Sclose);
  const hid_t id = a.get();
  ASSERT_GE(id, 0);
  EXPECT_GT(H5Iis_valid(id), 0);
  Handle b = std::move(a);
  EXPECT_LT(a.get(), 0);  // a moved-from handle is empty
  EXPECT_EQ(b.get(), id);
  EXPECT_TRUE(b.reset());
  EXPECT_LE(H5Iis_valid(id), 0);
  EXPECT_TRUE(b.reset());  // closing an empty handle is a no-op
}

// A failing close prints nothing (it may run in a destructor on an error path) and leaves
// HDF5's reason for the caller that reports it.
TEST(H5, FailedResetIsSilentAndKeepsTheReason) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle wrong(space.get(), H5Fclose);  // not a file: H5Fclose fails
  std::string why;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(wrong.reset(&why));
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "");
  EXPECT_NE(why, "");
  EXPECT_NE(why, "HDF5 call failed");
}

TEST(H5, QuietErrorsRestoresThePreviousHandler) {
  H5E_auto2_t before = nullptr;
  void* data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &before, &data);
  {
    QuietErrors quiet;
    H5E_auto2_t now = nullptr;
    H5Eget_auto2(H5E_DEFAULT, &now, &data);
    EXPECT_EQ(now, nullptr);
  }
  H5E_auto2_t after = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &after, &data);
  EXPECT_EQ(after, before);
}

// An HDF5 file in memory only (the core driver without a backing store).
Handle memory_file() {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_core(fapl.get(), 1 << 16, /*backing_store=*/0);
  return Handle(H5Fcreate("ternion_h5_test_in_memory", H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
}

void write_attr(hid_t obj, const char* name, hid_t type, const void* value) {
  Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj, name, type, scalar.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ASSERT_GE(H5Awrite(attr.get(), type, value), 0);
}

TEST(H5, ReadStringAttributeWhateverItsStorage) {
  Handle f = memory_file();
  ASSERT_GE(f.get(), 0);
  // h5py's str: variable-length UTF-8.
  Handle utf8(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(utf8.get(), H5T_VARIABLE);
  H5Tset_cset(utf8.get(), H5T_CSET_UTF8);
  const char* word = "caf\xc3\xa9";
  write_attr(f.get(), "vlen_utf8", utf8.get(), &word);
  // numpy bytes: fixed-length ASCII, NUL-padded.
  Handle fixed(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(fixed.get(), 8);
  H5Tset_strpad(fixed.get(), H5T_STR_NULLPAD);
  write_attr(f.get(), "fixed_ascii", fixed.get(), "byte\0\0\0\0");
  const int64_t number = 7;
  write_attr(f.get(), "number", H5T_STD_I64LE, &number);

  EXPECT_EQ(read_string_attribute(f.get(), "vlen_utf8", "op", "mem.h5"), "caf\xc3\xa9");
  EXPECT_EQ(read_string_attribute(f.get(), "fixed_ascii", "op", "mem.h5"), "byte");
  EXPECT_EQ(read_string_attribute(f.get(), "absent", "op", "mem.h5"), std::nullopt);
  try {
    read_string_attribute(f.get(), "number", "open_tokens", "mem.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[open_tokens] attribute 'number' of 'mem.h5' is not a single string");
  }
}

TEST(H5, LibraryVersionIsDotted) {
  const std::string v = library_version();
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

}  // namespace
}  // namespace ternion::io::h5

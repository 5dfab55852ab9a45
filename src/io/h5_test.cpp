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

TEST(H5, LibraryVersionIsDotted) {
  const std::string v = library_version();
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

}  // namespace
}  // namespace ternion::io::h5

#include "io/h5_output.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/disk_full.h"

namespace ternion::io::h5 {
namespace {

namespace fs = std::filesystem;

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ternion_h5_output_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

void write_floats(hid_t file, const char* name, const std::vector<float>& v) {
  QuietErrors quiet;
  const hsize_t n = v.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle ds(H5Dcreate2(file, name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  ASSERT_GE(ds.get(), 0);
  H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
}

int64_t open_files() { return static_cast<int64_t>(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL)); }

TEST_F(OutputFileTest, WritesAPlainHdf5File) {
  const std::string path = (dir_ / "w.h5").string();
  OutputFile out(path, "test");
  write_floats(out.get(), "x", {1, 2, 3});
  EXPECT_FALSE(out.failed());
  out.close();
  // Read back through HDF5's default driver: nothing in the file names ours.
  Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  ASSERT_GE(f.get(), 0);
  Handle ds(H5Dopen2(f.get(), "x", H5P_DEFAULT), H5Dclose);
  std::vector<float> back(3);
  ASSERT_GE(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
  EXPECT_EQ(back, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(static_cast<hsize_t>(fs::file_size(path)), [&] {
    hsize_t size = 0;
    H5Fget_filesize(f.get(), &size);
    return size;
  }());
}

TEST_F(OutputFileTest, CreateFailureNamesThePathAndReason) {
  const std::string path = (dir_ / "missing" / "w.h5").string();
  try {
    OutputFile out(path, "save");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[save] cannot create '" + path + "': No such file or directory");
  }
  EXPECT_EQ(open_files(), 0);
}

// A write that fails (here EFBIG; ENOSPC on a full disk) is reported once, by us, and the
// file still closes: with HDF5's own driver the close fails and the process crashes at exit.
TEST_F(OutputFileTest, FullDiskIsReportedAndTheFileStillCloses) {
  const std::string path = (dir_ / "big.h5").string();
  {
    OutputFile out(path, "save");
    DiskFull full(64 * 1024);
    write_floats(out.get(), "small", std::vector<float>(100, 1.0f));
    write_floats(out.get(), "big", std::vector<float>(100000, 1.0f));  // 400 kB
    EXPECT_TRUE(out.failed());
    try {
      out.check();
      FAIL();
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("[save] cannot write '" + path + "' at byte ", 0), 0u) << what;
      EXPECT_NE(what.find(": File too large"), std::string::npos) << what;
    }
    EXPECT_THROW(out.close(), Error);
    EXPECT_EQ(open_files(), 0);
  }
  // Dropped without close(): the destructor closes it, silently.
  {
    OutputFile out(path, "save");
    DiskFull full(64 * 1024);
    write_floats(out.get(), "big", std::vector<float>(100000, 1.0f));
    EXPECT_TRUE(out.failed());
  }
  EXPECT_EQ(open_files(), 0);
}

}  // namespace
}  // namespace ternion::io::h5

#include "checkpoint/weights_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/disk_full.h"
#include "io/h5.h"

namespace ternion::checkpoint {
namespace {

std::string tmp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("ternion_wf_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(WeightsFile, RoundTripWithAttributes) {
  const std::string path = tmp_path("w.h5");
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector<double>({0.5}, {1});
  write_weights(path, {{"transformer.wte.weight", a}, {"x.bias", b}}, {{"n_layer", 3}});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::vector<NamedTensor> in{{"transformer.wte.weight", Tensor::zeros({2, 3})},
                              {"x.bias", Tensor::zeros({1}, DType::f64)}};
  read_weights(path, in);
  EXPECT_EQ(in[0].tensor.to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(in[1].tensor.to_vector<double>(), std::vector<double>{0.5});
  EXPECT_EQ(read_weight_attributes(path).at("n_layer"), 3);
}

// A full disk: the error names the file and the reason, the temporary file is removed,
// the previous weights are intact and no HDF5 file stays open.
TEST(WeightsFile, FullDiskLeavesNoTmpAndThePreviousFile) {
  const std::string path = tmp_path("full.h5");
  write_weights(path, {{"a", Tensor::from_vector<float>({1, 2}, {2})}}, {{"n_layer", 1}});
  {
    io::DiskFull full(64 * 1024);
    try {
      write_weights(path, {{"a", Tensor::zeros({100000})}}, {{"n_layer", 2}});
      FAIL();
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("[write_weights] cannot write '" + path + ".tmp' at byte "), std::string::npos) << what;
      EXPECT_NE(what.find(": File too large"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(read_weight_attributes(path).at("n_layer"), 1);
}

TEST(WeightsFile, MissingNamesAndWrongShapesAreNamed) {
  const std::string path = tmp_path("w2.h5");
  write_weights(path, {{"a", Tensor::zeros({2, 2})}}, {});
  std::vector<NamedTensor> in{{"a", Tensor::zeros({3, 2})}, {"b", Tensor::zeros({1})}};
  try {
    read_weights(path, in);
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'a' has shape [2, 2], the model expects [3, 2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing dataset 'b'"), std::string::npos) << msg;
  }
  std::vector<NamedTensor> none;
  EXPECT_THROW(read_weights(tmp_path("nope.h5"), none), Error);
}

TEST(WeightsFile, AFailedWriteLeavesThePreviousFileAndNoTmp) {
  const std::string path = tmp_path("w3.h5");
  write_weights(path, {{"a", Tensor::full({2, 2}, 1.0)}}, {{"n_layer", 1}});
  // The second dataset of the same name fails after the first is written.
  EXPECT_THROW(write_weights(path, {{"a", Tensor::full({2, 2}, 2.0)}, {"a", Tensor::full({2, 2}, 2.0)}}, {}),
               Error);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::vector<NamedTensor> in{{"a", Tensor::zeros({2, 2})}};
  read_weights(path, in);
  EXPECT_EQ(in[0].tensor.to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(read_weight_attributes(path).at("n_layer"), 1);
}

TEST(WeightsFile, WritesIntoNewDirectoriesAndReplacesAnOlderFile) {
  const std::string path = tmp_path("sub/dir/w4.h5");
  write_weights(path, {{"a", Tensor::full({3}, 1.0)}}, {});
  write_weights(path, {{"a", Tensor::full({3}, 5.0)}}, {});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::vector<NamedTensor> in{{"a", Tensor::zeros({3})}};
  read_weights(path, in);
  EXPECT_EQ(in[0].tensor.to_vector<float>(), std::vector<float>(3, 5.0f));
}

}  // namespace
}  // namespace ternion::checkpoint

#include "core/tensor.h"

#include <gtest/gtest.h>

namespace ternion {
namespace {

TEST(Tensor, FactoriesAndShape) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(Tensor::full({2}, 2.5, DType::f64).to_vector<double>(), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(Tensor::scalar(3.0).item(), 3.0);
  EXPECT_EQ(t.str(), "f32[2, 3, 4]");
}

TEST(Tensor, EmptyAndSizeOneDims) {
  Tensor e = Tensor::empty({0, 5});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_EQ(e.view({5, 0}).shape(), (Shape{5, 0}));
  Tensor s = Tensor::from_vector<float>({1, 2, 3}, {3, 1});
  EXPECT_TRUE(s.transpose(0, 1).is_contiguous());  // size-1 dims do not break contiguity
}

TEST(Tensor, ViewsAliasStorage) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor v = t.view({3, 2});
  v.data<float>()[0] = 42;
  EXPECT_EQ(t.to_vector<float>()[0], 42);
  EXPECT_EQ(t.view({-1}).shape(), (Shape{6}));
}

TEST(Tensor, TransposeSliceSelectAndContiguous) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.contiguous().to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(t.slice(1, 1, 3).to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(t.select(0, 1).to_vector<float>(), (std::vector<float>{3, 4, 5}));
  EXPECT_THROW(tt.view({6}), Error);
}

TEST(Tensor, CopyIntoStridedDestination) {
  Tensor t = Tensor::zeros({2, 4});
  Tensor src = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2});
  Tensor dst = t.slice(1, 1, 3);
  dst.copy_(src);  // converts f64 -> f32 and scatters into the strided slice
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 0, 0, 3, 4, 0}));
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor t = Tensor::from_vector<float>({1.0f, -2.5f, 65504.0f, 0.1f}, {4});
  auto h = t.to(DType::f16).to_vector<float>();
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.5f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_NEAR(h[3], 0.1f, 1e-4);
  auto b = t.to(DType::bf16).to_vector<float>();
  EXPECT_EQ(b[1], -2.5f);
  EXPECT_NEAR(b[3], 0.1f, 1e-3);
  EXPECT_EQ(t.to(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 65504, 0}));
  EXPECT_EQ(Tensor::from_vector<uint16_t>({7, 65535}, {2}).to_vector<int64_t>(),
            (std::vector<int64_t>{7, 65535}));
}

TEST(Tensor, MisuseIsAnErrorNamingTheOp) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.data<double>();
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[data] requested f64 pointer of a f32[2, 3] tensor");
  }
  EXPECT_THROW(t.view({4, 2}), Error);
  EXPECT_THROW(t.slice(1, 2, 5), Error);
  EXPECT_THROW(t.size(2), Error);
  EXPECT_THROW(Tensor::empty({-1}), Error);
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::zeros({2}).copy_(Tensor::zeros({3})), Error);
}

TEST(Tensor, CudaWithoutBackendIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible";
  try {
    Tensor::empty({2}, DType::f32, Device::cuda(0));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
}

TEST(Tensor, CudaStridedCopiesMatchTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible";
  std::vector<float> v(2 * 3 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor cpu = Tensor::from_vector(v, {2, 3, 4});
  const Tensor gpu = cpu.to(Device::cuda(0));
  // A transposed view made contiguous, and a slice written in place.
  EXPECT_EQ(gpu.transpose(0, 2).contiguous().to_vector<float>(), cpu.transpose(0, 2).contiguous().to_vector<float>());
  Tensor dst = Tensor::zeros({2, 3, 8}, DType::f32, Device::cuda(0));
  dst.slice(2, 4, 8).copy_(gpu);
  Tensor ref = Tensor::zeros({2, 3, 8});
  ref.slice(2, 4, 8).copy_(cpu);
  EXPECT_EQ(dst.to_vector<float>(), ref.to_vector<float>());
}

}  // namespace
}  // namespace ternion

#include "model/parameter.h"

#include <gtest/gtest.h>

#include "core/rng.h"

namespace ternion::model {
namespace {

TEST(Parameter, BoxesStackAlongDimZero) {
  // The q, k, v rows of the second of two tp ranks: three boxes of [2, 4] in a [12, 4].
  const Shape g{12, 4};
  std::vector<Box> boxes = {range_box(g, 0, 2, 4), range_box(g, 0, 6, 8), range_box(g, 0, 10, 12)};
  Parameter p = make_parameter("w", g, boxes, Device::cpu());
  EXPECT_EQ(p.tensor.shape(), (Shape{6, 4}));
  EXPECT_EQ(p.row_begin(2), 4);
  EXPECT_EQ(p.part(1).shape(), (Shape{2, 4}));
  EXPECT_FALSE(p.is_whole());
  EXPECT_EQ(box_str(p.boxes[1]), "[6:8, 0:4]");
  Parameter w = make_parameter("w", g, whole_box(g), Device::cpu());
  EXPECT_TRUE(w.is_whole());
}

TEST(Parameter, InitIsTheSliceOfTheWholeTensor) {
  const Shape g{12, 4};
  Parameter whole = make_parameter("transformer.h.0.attn.c_attn.weight", g, whole_box(g), Device::cpu());
  whole.init_std = 0.02;
  init_parameter(whole, 7);
  for (int r = 0; r < 2; ++r) {
    std::vector<Box> boxes;
    for (int j = 0; j < 3; ++j) boxes.push_back(range_box(g, 0, 4 * j + 2 * r, 4 * j + 2 * r + 2));
    Parameter shard = make_parameter(whole.name, g, boxes, Device::cpu());
    shard.init_std = 0.02;
    init_parameter(shard, 7);
    Parameter from_full = make_parameter(whole.name, g, boxes, Device::cpu());
    load_from_full(from_full, whole.tensor);
    EXPECT_EQ(shard.tensor.to_vector<float>(), from_full.tensor.to_vector<float>()) << "tp rank " << r;
  }
  // Column boxes (row-parallel weights) too, and the round trip through a full tensor.
  Parameter col = make_parameter(whole.name, g, {range_box(g, 1, 1, 3)}, Device::cpu());
  col.init_std = 0.02;
  init_parameter(col, 7);
  Tensor full = Tensor::zeros(g);
  store_into_full(col, full);
  const auto f = full.to_vector<float>(), w = whole.tensor.to_vector<float>();
  for (int64_t i = 0; i < 12; ++i)
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_EQ(f[i * 4 + j], (j >= 1 && j < 3) ? w[i * 4 + j] : 0.0f) << i << "," << j;
}

TEST(Parameter, BadBoxesAreRefusedByName) {
  const Shape g{8, 4};
  try {
    make_parameter("p", g, {range_box(g, 0, 0, 4), range_box(g, 0, 2, 6)}, Device::cpu());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("p: boxes [0:4, 0:4] and [2:6, 0:4] overlap"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_parameter("p", g, {Box{{6, 0}, {4, 4}}}, Device::cpu()), Error);  // outside
  EXPECT_THROW(make_parameter("p", g, {Box{{0, 0}, {2, 4}}, Box{{2, 0}, {2, 2}}}, Device::cpu()), Error);  // no stack
}

}  // namespace
}  // namespace ternion::model

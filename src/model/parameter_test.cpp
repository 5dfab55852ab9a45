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

// Every contiguous range of a parameter's local elements (tp boxes, padding rows) comes out
// as contiguous boxes of the global tensor that hold exactly those elements.
TEST(Parameter, FlatRangesAreContiguousGlobalBoxes) {
  struct Case {
    Shape global;
    std::vector<Box> boxes;
    int64_t padding;
  };
  const Shape qkv{12, 4}, bias{12}, cube{3, 4, 5};
  const std::vector<Case> cases = {
      {qkv, {range_box(qkv, 0, 2, 4), range_box(qkv, 0, 6, 8), range_box(qkv, 0, 10, 12)}, 0},
      {qkv, {range_box(qkv, 1, 1, 3)}, 0},
      {qkv, {range_box(qkv, 0, 5, 9)}, 3},  // a vocabulary shard and its padding rows
      {bias, {range_box(bias, 0, 4, 8)}, 0},
      {cube, whole_box(cube), 0}};
  for (const Case& c : cases) {
    Parameter p = make_parameter("w", c.global, c.boxes, Device::cpu(), c.padding);
    const int64_t n = p.tensor.numel();
    // Which global flat index each local element is (-1: padding).
    std::vector<int64_t> global_of(static_cast<size_t>(n), -1);
    {
      Tensor full = Tensor::zeros(c.global);
      for (int64_t i = 0; i < full.numel(); ++i) full.data<float>()[i] = static_cast<float>(i);
      Parameter probe = p;
      probe.tensor = Tensor::full(p.tensor.shape(), -1.0);
      load_from_full(probe, full);
      for (int64_t i = 0; i < n; ++i) global_of[static_cast<size_t>(i)] = static_cast<int64_t>(probe.tensor.data<float>()[i]);
    }
    const std::vector<int64_t> strides = [&] {
      std::vector<int64_t> s(c.global.size(), 1);
      for (size_t d = c.global.size() - 1; d-- > 0;) s[d] = s[d + 1] * c.global[d + 1];
      return s;
    }();
    for (int64_t a = 0; a <= n; ++a) {
      for (int64_t b = a; b <= n; ++b) {
        std::vector<int64_t> seen;
        for (const FlatPiece& f : flat_range_pieces(p, a, b)) {
          // The box's elements in row-major order are the local elements from local_begin on.
          int64_t at = f.local_begin;
          std::vector<int64_t> idx(f.box.shape.size(), 0);
          for (int64_t e = 0; e < f.box.numel(); ++e, ++at) {
            int64_t g = 0;
            for (size_t d = 0; d < idx.size(); ++d) g += (f.box.offsets[d] + idx[d]) * strides[d];
            ASSERT_EQ(global_of[static_cast<size_t>(at)], g) << box_str(f.box) << " of [" << a << ", " << b << ")";
            seen.push_back(at);
            for (size_t d = idx.size(); d-- > 0;) {
              if (++idx[d] < f.box.shape[d]) break;
              idx[d] = 0;
            }
          }
        }
        std::vector<int64_t> want;
        for (int64_t i = a; i < b; ++i)
          if (global_of[static_cast<size_t>(i)] >= 0) want.push_back(i);
        ASSERT_EQ(seen, want) << "[" << a << ", " << b << ") of " << shape_str(p.tensor.shape());
      }
    }
  }
  Parameter p = make_parameter("w", {4}, whole_box({4}), Device::cpu());
  EXPECT_THROW(flat_range_pieces(p, 2, 5), Error);
}

}  // namespace
}  // namespace ternion::model

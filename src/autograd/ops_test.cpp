// Every op: an f64 finite-difference gradient check, odd sizes, empty tensors, and misuse
// errors that name the op and the shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autograd.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/test_util.h"

namespace ternion::autograd {
namespace {

using testing::randint;
using testing::randn;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

Tensor param(const Shape& s, uint64_t seed, double std = 1.0) {
  Tensor t = randn(s, seed, DType::f64, std);
  set_requires_grad(t);
  return t;
}

// Projects a tensor output onto fixed random weights so every output element matters.
Fn scalarize(const std::function<Tensor(const std::vector<Tensor>&)>& f, uint64_t seed = 99) {
  return [f, seed](const std::vector<Tensor>& in) {
    Tensor y = f(in);
    if (y.numel() == 1 && y.ndim() == 0) return y;
    return sum(mul(y, randn(y.shape(), seed)));
  };
}

void expect_gradcheck(const Fn& f, const std::vector<Tensor>& inputs) {
  GradcheckResult r = gradcheck(scalarize(f), inputs);
  EXPECT_TRUE(r.ok) << r.first_failure << " (max abs error " << r.max_abs_error << ")";
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Gradcheck, Linear) {
  expect_gradcheck([](auto& in) { return linear(in[0], in[1], in[2]); },
                   {param({2, 3, 5}, 1), param({7, 5}, 2), param({7}, 3)});
  expect_gradcheck([](auto& in) { return linear(in[0], in[1]); }, {param({1, 4}, 4), param({1, 4}, 5)});
}

TEST(Gradcheck, Matmul) {
  expect_gradcheck([](auto& in) { return matmul(in[0], in[1]); }, {param({2, 3, 4, 5}, 6), param({2, 3, 5, 3}, 7)});
  expect_gradcheck([](auto& in) { return matmul(in[0], in[1]); }, {param({3, 2, 5}, 8), param({5, 7}, 9)});
}

TEST(Gradcheck, Embedding) {
  Tensor idx = Tensor::from_vector<int32_t>({0, 3, 3, 1, 4, 0}, {2, 3});  // repeats accumulate
  expect_gradcheck([idx](auto& in) { return embedding(idx, in[0]); }, {param({5, 3}, 10)});
  Tensor idx64 = idx.to(DType::i64);
  expect_gradcheck([idx64](auto& in) { return embedding(idx64, in[0]); }, {param({5, 3}, 11)});
}

TEST(Gradcheck, AddMulScale) {
  expect_gradcheck([](auto& in) { return add(in[0], in[1]); }, {param({3, 4}, 12), param({3, 4}, 13)});
  expect_gradcheck([](auto& in) { return add(in[0], in[1]); }, {param({2, 3, 4}, 14), param({4}, 15)});
  expect_gradcheck([](auto& in) { return mul(in[0], in[1]); }, {param({3, 5}, 16), param({3, 5}, 17)});
  expect_gradcheck([](auto& in) { return mul(in[0], in[1]); }, {param({2, 3, 5}, 18), param({3, 5}, 19)});
  expect_gradcheck([](auto& in) { return scale(in[0], -0.7); }, {param({6}, 20)});
}

TEST(Gradcheck, LayerNorm) {
  expect_gradcheck([](auto& in) { return layer_norm(in[0], in[1], in[2]); },
                   {param({2, 3, 7}, 21), param({7}, 22), param({7}, 23)});
  expect_gradcheck([](auto& in) { return layer_norm(in[0], in[1], in[2]); },
                   {param({1, 2}, 24), param({2}, 25), param({2}, 26)});
}

TEST(Gradcheck, GeluSoftmax) {
  expect_gradcheck([](auto& in) { return gelu(in[0]); }, {param({3, 7}, 27, 2.0)});
  expect_gradcheck([](auto& in) { return softmax(in[0]); }, {param({4, 5}, 28)});
  expect_gradcheck([](auto& in) { return softmax(in[0]); }, {param({3, 1}, 29)});
}

TEST(Gradcheck, CausalAttention) {
  expect_gradcheck([](auto& in) { return causal_attention(in[0], in[1], in[2]); },
                   {param({2, 2, 5, 3}, 30), param({2, 2, 5, 3}, 31), param({2, 2, 5, 3}, 32)});
  expect_gradcheck([](auto& in) { return causal_attention(in[0], in[1], in[2]); },
                   {param({1, 1, 1, 4}, 33), param({1, 1, 1, 4}, 34), param({1, 1, 1, 4}, 35)});
}

TEST(Gradcheck, CrossEntropy) {
  Tensor t = randint({2, 3}, 7, 36);
  expect_gradcheck([t](auto& in) { return cross_entropy(in[0], t); }, {param({2, 3, 7}, 37)});
  Tensor t1 = Tensor::from_vector<int64_t>({2}, {1});
  expect_gradcheck([t1](auto& in) { return cross_entropy(in[0], t1); }, {param({1, 3}, 38)});
}

TEST(Gradcheck, Dropout) {
  expect_gradcheck([](auto& in) { return dropout(in[0], 0.3, 1234, 5); }, {param({4, 9}, 39)});
  expect_gradcheck([](auto& in) { return dropout(in[0], 0.3, 1234, 5, 777); }, {param({4, 9}, 40)});
}

TEST(Gradcheck, ShapeOps) {
  expect_gradcheck([](auto& in) { return reshape(in[0], {3, -1}); }, {param({2, 3, 2}, 40)});
  expect_gradcheck([](auto& in) { return contiguous(transpose(in[0], 0, 2)); }, {param({2, 3, 4}, 41)});
  // A transposed view consumed directly by an op.
  expect_gradcheck([](auto& in) { return gelu(transpose(in[0], 0, 1)); }, {param({3, 5}, 42)});
  expect_gradcheck(
      [](auto& in) {
        auto p = split(in[0], {1, 3, 2}, 1);
        return concat({p[2], p[0], scale(p[1], 2.0)}, 1);
      },
      {param({2, 6, 2}, 43)});
  expect_gradcheck([](auto& in) { return concat({in[0], in[1]}, 0); }, {param({1, 3}, 44), param({2, 3}, 45)});
}

TEST(Gradcheck, Reductions) {
  expect_gradcheck([](auto& in) { return sum(in[0]); }, {param({3, 4}, 46)});
  expect_gradcheck([](auto& in) { return mean(in[0]); }, {param({5}, 47)});
}

TEST(Gradcheck, TinyTransformerBlock) {
  // The composition the GPT block uses, end to end.
  const int B = 2, T = 3, C = 4, H = 2;
  Fn block = [=](auto& in) {
    Tensor x = in[0];
    Tensor h = layer_norm(x, in[1], in[2]);
    Tensor qkv = linear(h, in[3], in[4]);
    auto p = split(qkv, {C, C, C}, 2);
    auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };
    Tensor a = causal_attention(heads(p[0]), heads(p[1]), heads(p[2]));
    Tensor y = reshape(transpose(a, 1, 2), {B, T, C});
    return add(x, gelu(y));
  };
  expect_gradcheck(block, {param({B, T, C}, 48), param({C}, 49), param({C}, 50),
                           param({3 * C, C}, 51, 0.5), param({3 * C}, 52)});
}

TEST(Gradcheck, CheckpointedBlock) {
  Tensor w = param({4, 4}, 53);
  expect_gradcheck(
      [](auto& in) {
        Tensor w = in[1];
        return checkpoint([w](const std::vector<Tensor>& x) { return std::vector<Tensor>{gelu(linear(x[0], w))}; },
                          {in[0]})[0];
      },
      {param({3, 4}, 54), w});
}

TEST(Gradcheck, CatchesAWrongGradient) {
  // The oracle can fail: x*x with the product detached on one side has the wrong gradient.
  GradcheckResult r = gradcheck([](auto& in) { return sum(mul(in[0], detach(in[0]))); },
                                {param({3}, 55)});
  EXPECT_FALSE(r.ok);
}

TEST(Gradcheck, Cast) {
  // f64 master -> f32 compute and back: the gradient returns in the master's dtype.
  Tensor x = param({3, 5}, 61);
  Tensor y = cast(x, DType::f32);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(cast(y, DType::f32).impl_ptr(), y.impl_ptr());  // same dtype: no copy, no node
  Tensor w = randn({3, 5}, 62, DType::f32);
  backward(sum(mul(y, w)));
  ASSERT_EQ(grad(x).dtype(), DType::f64);
  const auto g = grad(x).to_vector<double>();
  const auto wv = w.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], wv[i]);
  backward(sum(cast(x, DType::f32)));  // a second use accumulates into the master grad
  const auto g2 = grad(x).to_vector<double>();
  for (size_t i = 0; i < g2.size(); ++i) EXPECT_EQ(g2[i], wv[i] + 1.0);
  // bf16 rounds to nearest even, as the storage type does.
  Tensor v = Tensor::from_vector<float>({1.0f, 1.00390625f, 1.01171875f, -3.14159f}, {4});
  const auto r = cast(v, DType::bf16).to(DType::f32).to_vector<float>();
  EXPECT_EQ(r, (std::vector<float>{1.0f, 1.0f, 1.015625f, -3.140625f}));
}

TEST(Ops, EmptyTensors) {
  Tensor x = param({0, 4}, 56), w = param({3, 4}, 57), b = param({3}, 58);
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
  backward(sum(y));
  EXPECT_EQ(grad(w).shape(), w.shape());
  for (double g : grad(w).to_vector<double>()) EXPECT_EQ(g, 0.0);
  EXPECT_EQ(gelu(x).shape(), x.shape());
  EXPECT_EQ(layer_norm(x, param({4}, 59), param({4}, 60)).shape(), x.shape());
  EXPECT_EQ(sum(x).item(), 0.0);
  EXPECT_EQ(softmax(Tensor::zeros({0, 5}, DType::f64)).numel(), 0);
}

TEST(Ops, F32MatchesF64) {
  Tensor x = randn({3, 8}, 61), w = randn({5, 8}, 62);
  auto y64 = gelu(linear(x, w)).to_vector<double>();
  auto y32 = gelu(linear(x.to(DType::f32), w.to(DType::f32))).to_vector<double>();
  for (size_t i = 0; i < y64.size(); ++i) EXPECT_NEAR(y32[i], y64[i], 1e-4);
}

TEST(Ops, CrossEntropyValue) {
  // Uniform logits: loss is log V exactly.
  Tensor logits = Tensor::zeros({4, 10}, DType::f64);
  Tensor t = Tensor::from_vector<int32_t>({1, 2, 3, 9}, {4});
  EXPECT_NEAR(cross_entropy(logits, t).item(), std::log(10.0), 1e-12);
}

TEST(Ops, MisuseNamesOpAndShapes) {
  Tensor a = randn({2, 3}, 63), b = randn({4, 5}, 64);
  expect_error([&] { linear(a, b); }, "[linear] input f64[2, 3] does not match weight f64[4, 5]");
  expect_error([&] { matmul(a, b); }, "[matmul] inner dims differ: f64[2, 3] @ f64[4, 5]");
  expect_error([&] { add(a, b); }, "[add] shapes do not broadcast: f64[2, 3] and f64[4, 5]");
  expect_error([&] { add(a, a.to(DType::f32)); }, "[add] dtype mismatch");
  expect_error([&] { layer_norm(a, randn({4}, 1), randn({4}, 2)); }, "[layer_norm]");
  expect_error([&] { causal_attention(a, a, a); }, "[causal_attention] q, k, v must all be [B, H, T, D]");
  expect_error([&] { cross_entropy(a, Tensor::zeros({3}, DType::i32)); }, "[cross_entropy] logits f64[2, 3]");
  expect_error([&] { cross_entropy(a, Tensor::full({2}, 3, DType::i32)); }, "3");
  expect_error([&] { embedding(Tensor::full({2}, 7, DType::i32), b); }, "7");
  expect_error([&] { embedding(a, b); }, "[embedding] indices must be i32 or i64");
  expect_error([&] { split(a, {1, 1}, 1); }, "[split] sizes sum to 2 but dim 1 of f64[2, 3] is 3");
  expect_error([&] { concat({a, b}, 0); }, "[concat] shapes differ");
  expect_error([&] { reshape(a, {4, -1}); }, "[view] cannot view f64[2, 3] as [4, -1]");
  expect_error([&] { dropout(a, 1.0, 1, 1); }, "[dropout] p must be in [0, 1)");
}

}  // namespace
}  // namespace ternion::autograd

// Every CUDA kernel against its CPU version on fresh random inputs: f32 to ~1e-5 relative
// (composite kernels ~1e-4), bf16 to ~1e-2 and f16 to ~5e-3 against the CPU run on the same
// bf16- or f16-rounded inputs. Sizes include 1, primes and non-multiples of the tiles. Inputs
// stay far inside f16's range (|x| < 65504); F16OverflowIsInf checks what happens past it.
// Without a visible GPU every test skips.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/device.h"
#include "kernels/cuda/adamw.h"
#include "kernels/kernels.h"

namespace ternion::kernels {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no GPU visible"

struct Tol {
  double rtol, atol;
};
constexpr Tol kF32{1e-5, 1e-5}, kF32Loose{1e-4, 1e-4}, kBf16{2e-2, 2e-2}, kF16{5e-3, 5e-3};

Tensor randn(const Shape& shape, uint32_t seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, static_cast<float>(scale));
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_vector(v, shape);
}

Tensor ids(int64_t n, int64_t V, uint32_t seed, DType dt = DType::i64) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> dist(0, V - 1);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t& x : v) x = dist(gen);
  return Tensor::from_vector(v, {n}).to(dt);
}

// The CPU tensor rounded through `dt` (identity for f32), so both devices see one input.
Tensor rounded(const Tensor& t, DType dt) { return t.to(dt).to(DType::f32); }
Tensor gpu(const Tensor& t, DType dt = DType::f32) { return t.to(dt).to(Device::cuda()); }
Tensor host(const Tensor& t) { return t.to(Device::cpu()).to(DType::f32); }

void expect_close(const Tensor& want, const Tensor& got_any, Tol tol, const char* what) {
  const std::vector<float> w = want.to(DType::f32).to_vector<float>();
  const std::vector<float> g = host(got_any).to_vector<float>();
  ASSERT_EQ(w.size(), g.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < w.size() && bad < 5; ++i) {
    if (!(std::fabs(w[i] - g[i]) <= tol.atol + tol.rtol * std::fabs(w[i]))) {
      ADD_FAILURE() << what << "[" << i << "]: cpu " << w[i] << " cuda " << g[i];
      ++bad;
    }
  }
}

class Dtypes : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  Tol tol(Tol f32 = kF32) const {
    return dt() == DType::f32 ? f32 : dt() == DType::f16 ? kF16 : kBf16;
  }
};
// Every compute dtype of the precision modes: f32, bf16 and f16.
class ComputeDtypes : public Dtypes {};
INSTANTIATE_TEST_SUITE_P(CudaKernels, ComputeDtypes,
                         ::testing::Values(DType::f32, DType::bf16, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(CudaMemory, RoundTripAndAllocatorStats) {
  SKIP_WITHOUT_GPU();
  Allocator& alloc = allocator_for(Device::cuda());
  const Tensor x = randn({3, 1031}, 1);
  {
    const Tensor d = x.to(Device::cuda());
    EXPECT_GE(alloc.stats().allocated, x.nbytes());
    Tensor d2 = Tensor::empty(x.shape(), DType::f32, Device::cuda());
    d2.copy_(d);  // device to device
    expect_close(x, d2, {0, 0}, "round trip");
  }
  const size_t reserved = alloc.stats().reserved;
  const Tensor again = x.to(Device::cuda());  // same size class: served from the cache
  EXPECT_EQ(alloc.stats().reserved, reserved);
  EXPECT_GE(alloc.stats().peak_allocated, alloc.stats().allocated);
  Tensor z = Tensor::full({5}, 1.0, DType::f32, Device::cuda());
  z.zero_();
  expect_close(Tensor::zeros({5}), z, {0, 0}, "zero_");
}

TEST_P(ComputeDtypes, AddMulAxpbySumRows) {
  SKIP_WITHOUT_GPU();
  for (int64_t rows : {1, 6}) {
    for (int64_t C : {1, 7, 1031}) {
      const Tensor a = rounded(randn({rows * 2, C}, 2), dt()), b = rounded(randn({2, C}, 3), dt());
      Tensor want = Tensor::empty(a.shape()), got = gpu(Tensor::zeros(a.shape()), dt());
      cpu::add(a, b, want);
      cuda::add(gpu(a, dt()), gpu(b, dt()), got);
      expect_close(want, got, tol(), "add");
      cpu::mul(a, b, want);
      cuda::mul(gpu(a, dt()), gpu(b, dt()), got);
      expect_close(want, got, tol(), "mul");
      const Tensor c = rounded(randn(a.shape(), 4), dt());
      cpu::axpby(0.5, a, -2.0, c, want);
      cuda::axpby(0.5, gpu(a, dt()), -2.0, gpu(c, dt()), got);
      expect_close(want, got, tol(), "axpby");
      cpu::axpby(3.0, a, 0.0, Tensor(), want);
      cuda::axpby(3.0, gpu(a, dt()), 0.0, Tensor(), got);
      expect_close(want, got, tol(), "axpby beta=0");
      Tensor acc = rounded(randn({2, C}, 5), dt()), acc_gpu = gpu(acc, dt());
      cpu::sum_rows(a, acc);
      cuda::sum_rows(gpu(a, dt()), acc_gpu);
      expect_close(acc, acc_gpu, tol(kF32Loose), "sum_rows (+=)");
    }
  }
}

TEST_P(ComputeDtypes, SumAllAndSumSquares) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : {1, 2, 997, 300007}) {
    const Tensor a = rounded(randn({n}, 6), dt());
    Tensor want = Tensor::empty({1}, DType::f64), got = want.to(Device::cuda());
    cpu::sum_all(a, want);
    cuda::sum_all(gpu(a, dt()), got);
    expect_close(want, got, kF32Loose, "sum_all");
    cpu::sum_squares(a, want);
    cuda::sum_squares(gpu(a, dt()), got);
    expect_close(want, got, kF32, "sum_squares");
  }
}

TEST_P(ComputeDtypes, Gemm) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 5, N = 7, K = 13;
  for (int64_t batch : {1, 3}) {
    for (int64_t ba : {int64_t{1}, batch}) {
      for (int64_t bb : {int64_t{1}, batch}) {
        for (bool ta : {false, true}) {
          for (bool tb : {false, true}) {
            const Tensor a = rounded(randn(ta ? Shape{ba, K, M} : Shape{ba, M, K}, 7), dt());
            const Tensor b = rounded(randn(tb ? Shape{bb, N, K} : Shape{bb, K, N}, 8), dt());
            Tensor want = rounded(randn({batch, M, N}, 9), dt()), got = gpu(want, dt());
            cpu::gemm(a, ta, b, tb, want, 0.5, 0.25);
            cuda::gemm(gpu(a, dt()), ta, gpu(b, dt()), tb, got, 0.5, 0.25);
            expect_close(want, got, tol(kF32Loose), "gemm");
          }
        }
      }
    }
  }
  // K == 0: c = beta * c.
  Tensor want = rounded(randn({2, 3, 4}, 10), dt()), got = gpu(want, dt());
  const Tensor a0 = Tensor::zeros({2, 3, 0}), b0 = Tensor::zeros({2, 0, 4});
  cpu::gemm(a0, false, b0, false, want, 1.0, 2.0);
  cuda::gemm(gpu(a0, dt()), false, gpu(b0, dt()), false, got, 1.0, 2.0);
  expect_close(want, got, tol(), "gemm K=0");
}

TEST_P(ComputeDtypes, LayerNorm) {
  SKIP_WITHOUT_GPU();
  for (int64_t C : {1, 37, 769}) {
    const int64_t N = 67;
    const Tensor x = rounded(randn({N, C}, 11), dt()), w = rounded(randn({C}, 12), dt()),
                 b = rounded(randn({C}, 13), dt()), dy = rounded(randn({N, C}, 14), dt());
    Tensor y = Tensor::empty({N, C}), mean = Tensor::empty({N}), rstd = Tensor::empty({N});
    cpu::layernorm_forward(x, w, b, 1e-5, y, mean, rstd);
    Tensor gy = gpu(y, dt()), gm = gpu(mean), gr = gpu(rstd);
    cuda::layernorm_forward(gpu(x, dt()), gpu(w, dt()), gpu(b, dt()), 1e-5, gy, gm, gr);
    expect_close(y, gy, tol(kF32Loose), "layernorm y");
    expect_close(mean, gm, tol(kF32Loose), "layernorm mean");
    expect_close(rstd, gr, tol(kF32Loose), "layernorm rstd");
    Tensor dx = Tensor::empty({N, C}), dw = randn({C}, 15), db = randn({C}, 16);
    Tensor gdx = gpu(dx, dt()), gdw = gpu(dw, dt()), gdb = gpu(db, dt());
    dw = rounded(dw, dt());
    db = rounded(db, dt());
    cpu::layernorm_backward(x, w, mean, rstd, dy, dx, dw, db);
    cuda::layernorm_backward(gpu(x, dt()), gpu(w, dt()), gpu(mean), gpu(rstd), gpu(dy, dt()), gdx,
                             gdw, gdb);
    expect_close(dx, gdx, tol(kF32Loose), "layernorm dx");
    expect_close(dw, gdw, tol(kF32Loose), "layernorm dw (+=)");
    expect_close(db, gdb, tol(kF32Loose), "layernorm db (+=)");
  }
}

TEST_P(ComputeDtypes, GeluAndSoftmax) {
  SKIP_WITHOUT_GPU();
  for (int64_t C : {1, 31, 1025}) {
    const Tensor x = rounded(randn({3, C}, 17, 3.0), dt()), dy = rounded(randn({3, C}, 18), dt());
    Tensor want = Tensor::empty(x.shape()), got = gpu(want, dt());
    cpu::gelu_forward(x, want);
    cuda::gelu_forward(gpu(x, dt()), got);
    expect_close(want, got, tol(kF32Loose), "gelu_forward");
    cpu::gelu_backward(x, dy, want);
    cuda::gelu_backward(gpu(x, dt()), gpu(dy, dt()), got);
    expect_close(want, got, tol(kF32Loose), "gelu_backward");
    Tensor y = Tensor::empty(x.shape()), gy = gpu(y, dt());
    cpu::softmax_forward(x, y);
    cuda::softmax_forward(gpu(x, dt()), gy);
    expect_close(y, gy, tol(), "softmax_forward");
    cpu::softmax_backward(y, dy, want);
    cuda::softmax_backward(gpu(y, dt()), gpu(dy, dt()), got);
    expect_close(want, got, tol(kF32Loose), "softmax_backward");
  }
}

TEST_P(ComputeDtypes, Attention) {
  SKIP_WITHOUT_GPU();
  const Tol t = dt() == DType::f32 ? kF32Loose : dt() == DType::f16 ? Tol{2e-2, 2e-2} : Tol{5e-2, 5e-2};
  for (int64_t T : {1, 33, 70}) {
    for (int64_t D : {1, 16, 67}) {
      const Shape s = {2, 3, T, D};
      const Tensor q = rounded(randn(s, 19), dt()), k = rounded(randn(s, 20), dt()),
                   v = rounded(randn(s, 21), dt()), dout = rounded(randn(s, 22), dt());
      Tensor out = Tensor::empty(s), lse = Tensor::empty({2, 3, T});
      Tensor gout = gpu(out, dt()), glse = gpu(lse);  // lse is f32 for every input dtype
      cpu::attention_forward(q, k, v, out, lse);
      cuda::attention_forward(gpu(q, dt()), gpu(k, dt()), gpu(v, dt()), gout, glse);
      expect_close(out, gout, t, "attention out");
      expect_close(lse, glse, t, "attention lse");
      // Both backwards from the CPU's out and lse, so that they see the same saved state.
      Tensor dq = Tensor::empty(s), dk = Tensor::empty(s), dv = Tensor::empty(s);
      Tensor gdq = gpu(dq, dt()), gdk = gpu(dk, dt()), gdv = gpu(dv, dt());
      cpu::attention_backward(q, k, v, out, lse, dout, dq, dk, dv);
      cuda::attention_backward(gpu(q, dt()), gpu(k, dt()), gpu(v, dt()), gpu(out, dt()),
                               gpu(lse), gpu(dout, dt()), gdq, gdk, gdv);
      expect_close(dq, gdq, t, "attention dq");
      expect_close(dk, gdk, t, "attention dk");
      expect_close(dv, gdv, t, "attention dv");
    }
  }
}

TEST_P(ComputeDtypes, CrossEntropy) {
  SKIP_WITHOUT_GPU();
  for (int64_t V : {1, 101, 50257}) {
    const int64_t N = 13;
    const Tensor logits = rounded(randn({N, V}, 23, 2.0), dt());
    const Tensor targets = ids(N, V, 24, V == 101 ? DType::i32 : DType::i64);
    Tensor lse = Tensor::empty({N}), loss = Tensor::empty({1});
    Tensor glse = gpu(lse), gloss = gpu(loss);
    cpu::cross_entropy_forward(logits, targets, lse, loss);
    cuda::cross_entropy_forward(gpu(logits, dt()), targets.to(Device::cuda()), glse, gloss);
    expect_close(lse, glse, kF32Loose, "cross_entropy lse");
    expect_close(loss, gloss, tol(kF32Loose), "cross_entropy loss");
    Tensor dl = Tensor::empty({N, V}), gdl = gpu(dl, dt());
    cpu::cross_entropy_backward(logits, targets, lse, 2.0, dl);
    cuda::cross_entropy_backward(gpu(logits, dt()), targets.to(Device::cuda()), gpu(lse), 2.0,
                                 gdl);
    expect_close(dl, gdl, tol(kF32Loose), "cross_entropy dlogits");
  }
  const Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 5}, {2}).to(Device::cuda());
  Tensor lse = gpu(Tensor::empty({2})), loss = gpu(Tensor::empty({1}));
  EXPECT_THROW(cuda::cross_entropy_forward(gpu(randn({2, 5}, 25), dt()), bad, lse, loss), Error);
}

TEST_P(ComputeDtypes, Embedding) {
  SKIP_WITHOUT_GPU();
  for (int64_t C : {1, 77}) {
    const int64_t V = 11, N = 41;  // N > V: repeated ids accumulate
    const Tensor w = rounded(randn({V, C}, 26), dt()), idx = ids(N, V, 27, DType::i32);
    const Tensor dout = rounded(randn({N, C}, 28), dt());
    Tensor out = Tensor::empty({N, C}), gout = gpu(out, dt());
    cpu::embedding_forward(idx, w, out);
    cuda::embedding_forward(idx.to(Device::cuda()), gpu(w, dt()), gout);
    expect_close(out, gout, {0, 0}, "embedding_forward");
    Tensor dw = rounded(randn({V, C}, 29), dt()), gdw = gpu(dw, dt());
    cpu::embedding_backward(idx, dout, dw);
    cuda::embedding_backward(idx.to(Device::cuda()), gpu(dout, dt()), gdw);
    expect_close(dw, gdw, tol(kF32Loose), "embedding_backward (+=)");
  }
  const Tensor bad = Tensor::from_vector(std::vector<int32_t>{3, -1}, {2}).to(Device::cuda());
  Tensor out = gpu(Tensor::empty({2, 4}), dt());
  EXPECT_THROW(cuda::embedding_forward(bad, gpu(randn({5, 4}, 30), dt()), out), Error);
}

// One rank's part of a vocabulary split three ways, as src/parallel's vocab_shard does:
// ids [V*r/3, V*(r+1)/3) in the first `count` rows (columns) of kVocabRows, the rest padding.
struct VocabPart {
  int64_t begin, count;
};
VocabPart vocab_part(int64_t V, int64_t r) { return {V * r / 3, V * (r + 1) / 3 - V * r / 3}; }

// t[N,Vl] (CPU, f32) with the columns from `count` on set to `value`.
Tensor with_padding(const Tensor& t, int64_t count, float value) {
  std::vector<float> v = t.to_vector<float>();
  const int64_t Vl = t.size(-1);
  for (size_t i = 0; i < v.size(); ++i) {
    if (static_cast<int64_t>(i) % Vl >= count) v[i] = value;
  }
  return Tensor::from_vector(v, t.shape());
}

TEST_P(ComputeDtypes, VocabEmbedding) {
  SKIP_WITHOUT_GPU();
  const int64_t V = 1031, Vl = 350, N = 300, C = 77;  // N > V / 3: repeated ids accumulate
  const Tensor idx = ids(N, V, 50, DType::i32), dout = rounded(randn({N, C}, 51), dt());
  for (int64_t r = 0; r < 3; ++r) {
    const VocabPart p = vocab_part(V, r);
    const Tensor w = rounded(randn({Vl, C}, 52 + static_cast<uint32_t>(r)), dt());
    Tensor out = Tensor::empty({N, C}), gout = gpu(Tensor::full({N, C}, 7.0), dt());
    cpu::vocab_embedding_forward(idx, w, p.begin, p.count, V, out);
    cuda::vocab_embedding_forward(idx.to(Device::cuda()), gpu(w, dt()), p.begin, p.count, V, gout);
    expect_close(out, gout, {0, 0}, "vocab_embedding_forward");
    // Padding rows of dw are never written: the CPU leaves them, so must the GPU.
    Tensor dw = rounded(randn({Vl, C}, 55 + static_cast<uint32_t>(r)), dt()), gdw = gpu(dw, dt());
    cpu::vocab_embedding_backward(idx, dout, p.begin, p.count, V, dw);
    cuda::vocab_embedding_backward(idx.to(Device::cuda()), gpu(dout, dt()), p.begin, p.count, V,
                                   gdw);
    expect_close(dw, gdw, tol(kF32Loose), "vocab_embedding_backward (+=)");
  }
  const Tensor bad = Tensor::from_vector(std::vector<int32_t>{3, 1031}, {2}).to(Device::cuda());
  Tensor out = gpu(Tensor::empty({2, C}), dt());
  EXPECT_THROW(cuda::vocab_embedding_forward(bad, gpu(randn({Vl, C}, 58), dt()), 0, 343, V, out),
               Error);
}

TEST_P(ComputeDtypes, VocabCrossEntropy) {
  SKIP_WITHOUT_GPU();
  const int64_t V = 50257, Vl = 16768, N = 13;  // Vl = ceil(V/3) rounded up to 64
  const Tensor targets = ids(N, V, 60), gtargets = targets.to(Device::cuda());
  for (int64_t r = 0; r < 3; ++r) {
    const VocabPart p = vocab_part(V, r);
    // Padding holds the largest logits: a kernel that read it would get another max and lse.
    const Tensor logits = rounded(
        with_padding(randn({N, Vl}, 61 + static_cast<uint32_t>(r), 2.0), p.count, 30.f), dt());
    const Tensor glogits = gpu(logits, dt());
    Tensor row_max = Tensor::empty({N}), grow_max = gpu(Tensor::empty({N}));
    cpu::vocab_ce_max(logits, p.count, row_max);
    cuda::vocab_ce_max(glogits, p.count, grow_max);
    expect_close(row_max, grow_max, {0, 0}, "vocab_ce_max");
    // A group max above this part's, as another rank would bring.
    std::vector<float> m = row_max.to_vector<float>();
    for (float& x : m) x += 0.5f;
    const Tensor group_max = Tensor::from_vector(m, {N});
    Tensor sums = Tensor::empty({2, N}), gsums = gpu(Tensor::empty({2, N}));
    cpu::vocab_ce_sums(logits, targets, p.begin, p.count, V, group_max, sums);
    cuda::vocab_ce_sums(glogits, gtargets, p.begin, p.count, V, gpu(group_max), gsums);
    expect_close(sums, gsums, kF32Loose, "vocab_ce_sums");
    Tensor lse = Tensor::empty({N}), loss = Tensor::empty({1});
    Tensor glse = gpu(lse), gloss = gpu(loss);
    cpu::vocab_ce_finish(group_max, sums, lse, loss);
    cuda::vocab_ce_finish(gpu(group_max), gpu(sums), glse, gloss);
    expect_close(lse, glse, kF32, "vocab_ce_finish lse");
    expect_close(loss, gloss, kF32, "vocab_ce_finish loss");
    Tensor dl = Tensor::empty({N, Vl}), gdl = gpu(Tensor::full({N, Vl}, 5.0), dt());
    cpu::vocab_ce_backward(logits, targets, p.begin, p.count, lse, 2.0, dl);
    cuda::vocab_ce_backward(glogits, gtargets, p.begin, p.count, gpu(lse), 2.0, gdl);
    expect_close(dl, gdl, tol(kF32Loose), "vocab_ce_backward");
    const std::vector<float> got = host(gdl).to_vector<float>();
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t v = p.count; v < Vl; ++v) {
        ASSERT_EQ(got[n * Vl + v], 0.f) << "padding " << n << "," << v;
      }
    }
  }
  const Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, V}, {2}).to(Device::cuda());
  Tensor sums = gpu(Tensor::empty({2, 2}));
  EXPECT_THROW(cuda::vocab_ce_sums(gpu(randn({2, Vl}, 64), dt()), bad, 0, 16752, V,
                                   gpu(Tensor::zeros({2})), sums),
               Error);
}

TEST_P(ComputeDtypes, DropoutSameMaskAsCpu) {
  SKIP_WITHOUT_GPU();
  for (double p : {0.0, 0.1, 0.5, 1.0}) {
    const Tensor x = rounded(randn({1009}, 31), dt());
    Tensor want = Tensor::empty(x.shape()), got = gpu(want, dt());
    cpu::dropout(x, p, 1234, 7, 5000, want);
    cuda::dropout(gpu(x, dt()), p, 1234, 7, 5000, got);
    // f32: bit for bit. bf16, f16: the same zeros, kept values within one rounding.
    const Tol t = dt() == DType::f32   ? Tol{0, 0}
                  : dt() == DType::f16 ? Tol{1e-3, 0}
                                       : Tol{1e-2, 0};
    expect_close(want, got, t, "dropout");
  }
}

TEST(CudaKernels, AdamwSingleAndMultiTensor) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> sizes = {1, 130, 4099};
  std::vector<Tensor> p, g, m, v, gp, gg, gm, gv;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint32_t s = static_cast<uint32_t>(40 + 4 * i);
    p.push_back(randn({sizes[i]}, s));
    g.push_back(randn({sizes[i]}, s + 1));
    m.push_back(randn({sizes[i]}, s + 2, 0.1));
    v.push_back(randn({sizes[i]}, s + 3, 0.1));
    gp.push_back(gpu(p[i]));
    gg.push_back(gpu(g[i]));
    gm.push_back(gpu(m[i]));
  }
  for (Tensor& t : v) {  // second moments are non-negative
    std::vector<float> a = t.to_vector<float>();
    for (float& x : a) x = x * x;
    t = Tensor::from_vector(a, t.shape());
  }
  for (const Tensor& t : v) gv.push_back(gpu(t));
  for (size_t i = 0; i < p.size(); ++i)
    cpu::adamw(p[i], g[i], m[i], v[i], 1e-3, 0.9, 0.95, 1e-8, 0.1, 3);
  cuda::adamw(gp[0], gg[0], gm[0], gv[0], 1e-3, 0.9, 0.95, 1e-8, 0.1, 3);
  cuda::adamw_multi_tensor(std::span(gp).subspan(1), std::span<const Tensor>(gg).subspan(1),
                           std::span(gm).subspan(1), std::span(gv).subspan(1), 1e-3, 0.9, 0.95,
                           1e-8, 0.1, 3);
  for (size_t i = 0; i < p.size(); ++i) {
    expect_close(p[i], gp[i], kF32, "adamw p");
    expect_close(m[i], gm[i], kF32, "adamw m");
    expect_close(v[i], gv[i], kF32, "adamw v");
  }
}

// f16 tops out at 65504: a result past it rounds to inf, and the f64 sum of squares of a
// gradient holding inf is inf, which is how the fp16 loss scaler finds an overflowed step.
TEST(CudaKernels, F16OverflowIsInf) {
  SKIP_WITHOUT_GPU();
  const Tensor a = gpu(Tensor::from_vector(std::vector<float>{40000.f, -1.f}, {2}), DType::f16);
  Tensor out = gpu(Tensor::zeros({2}), DType::f16);
  cuda::axpby(1.0, a, 1.0, a, out);  // 80000 > 65504
  const std::vector<float> v = host(out).to_vector<float>();
  EXPECT_TRUE(std::isinf(v[0]) && v[0] > 0) << v[0];
  EXPECT_EQ(v[1], -2.f);
  Tensor norm = Tensor::empty({1}, DType::f64, Device::cuda());
  cuda::sum_squares(out, norm);
  EXPECT_TRUE(std::isinf(host(norm).to_vector<float>()[0]));
}

TEST(CudaKernels, MisuseThrowsNamingTheOp) {
  SKIP_WITHOUT_GPU();
  const Tensor a = randn({4}, 32);  // a CPU tensor passed to a CUDA kernel
  Tensor out = gpu(Tensor::empty({4}));
  try {
    cuda::gelu_forward(a, out);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[gelu_forward]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ternion::kernels

// `ternion selftest`: a small GPT-block-shaped forward and backward on the CPU, so a
// fresh install can show that the whole stack links and computes.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "cli/commands.h"
#include "core/rng.h"

namespace ternion::cli {

int run_selftest(int, char**) {
  using namespace autograd;
  const int64_t B = 4, T = 64, C = 128, H = 4, V = 256;
  auto param = [](const Shape& s, const char* name) {
    Tensor t = Tensor::empty(s);
    init_normal(t, 1337, name, 0.0, 0.02);
    set_requires_grad(t);
    return t;
  };
  Tensor wte = param({V, C}, "wte"), w_attn = param({3 * C, C}, "c_attn"), w_fc = param({4 * C, C}, "c_fc"),
         w_proj = param({C, 4 * C}, "c_proj");
  Tensor ln_w = Tensor::full({C}, 1.0), ln_b = Tensor::zeros({C});
  std::vector<int32_t> ids(B * T), tgt(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    ids[i] = static_cast<int32_t>(i * 7 % V);
    tgt[i] = static_cast<int32_t>((i * 7 + 1) % V);
  }
  Tensor idx = Tensor::from_vector(ids, {B, T}), targets = Tensor::from_vector(tgt, {B, T});

  const auto t0 = std::chrono::steady_clock::now();
  Tensor x = embedding(idx, wte);
  Tensor h = layer_norm(x, ln_w, ln_b);
  auto qkv = split(linear(h, w_attn), {C, C, C}, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };
  Tensor a = reshape(transpose(causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2])), 1, 2), {B, T, C});
  x = add(x, a);
  x = add(x, linear(gelu(linear(layer_norm(x, ln_w, ln_b), w_fc)), w_proj));
  Tensor logits = matmul(x, transpose(wte, 0, 1));
  Tensor loss = cross_entropy(logits, targets);
  backward(loss);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  const double l = loss.item();
  std::printf("selftest: loss %.4f (expected about ln(%lld) = %.4f), forward+backward %.1f ms\n", l,
              static_cast<long long>(V), std::log(static_cast<double>(V)), ms);
  if (!std::isfinite(l) || std::abs(l - std::log(static_cast<double>(V))) > 0.5 || !grad(wte).defined()) {
    std::fprintf(stderr, "selftest: FAILED\n");
    return 1;
  }
  std::printf("selftest: ok\n");
  return 0;
}

}  // namespace ternion::cli

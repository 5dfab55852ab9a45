#include "model/gpt.h"

#include <cmath>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "core/rng.h"

namespace ternion::model {

using namespace autograd;

namespace {

void check_config(const GptConfig& c) {
  TN_CHECK(c.vocab_size > 0, "model", "model.vocab_size must be positive, got ", c.vocab_size);
  TN_CHECK(c.block_size > 0, "model", "model.block_size must be positive, got ", c.block_size);
  TN_CHECK(c.n_layer > 0, "model", "model.n_layer must be positive, got ", c.n_layer);
  TN_CHECK(c.n_head > 0, "model", "model.n_head must be positive, got ", c.n_head);
  TN_CHECK(c.n_embd > 0 && c.n_embd % c.n_head == 0, "model", "model.n_embd (", c.n_embd,
           ") must be a positive multiple of model.n_head (", c.n_head, ")");
  TN_CHECK(c.dropout >= 0 && c.dropout < 1, "model", "model.dropout must be in [0, 1), got ", c.dropout);
  TN_CHECK(c.compute_dtype == DType::f32 || c.compute_dtype == DType::bf16 || c.compute_dtype == DType::f16,
           "model", "compute dtype must be f32, bf16 or f16, got ", dtype_name(c.compute_dtype));
}

// Dropout sites inside one step; stream = step * kSites + site.
constexpr uint64_t kSitesPerLayer = 2;
uint64_t dropout_stream(uint64_t step, int64_t n_layer, uint64_t site) {
  return step * (kSitesPerLayer * static_cast<uint64_t>(n_layer) + 1) + site;
}

}  // namespace

int Gpt::add_param(std::string name, Shape shape, double init_std, double init_value, bool decay) {
  Parameter p;
  p.name = std::move(name);
  p.tensor = Tensor::empty(shape, DType::f32, config_.device);
  set_requires_grad(p.tensor);
  p.global_shape = shape;
  p.offsets = Shape(shape.size(), 0);
  p.init_std = init_std;
  p.init_value = init_value;
  p.weight_decay = decay;
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

Gpt::Gpt(const GptConfig& config) : config_(config) {
  check_config(config_);
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  wte_ = add_param("transformer.wte.weight", {V, C}, std, 0, true);
  wpe_ = add_param("transformer.wpe.weight", {config_.block_size, C}, std, 0, true);
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    Block b;
    b.wln1 = add_param(p + "ln_1.weight", {C}, 0, 1, false);
    b.bln1 = add_param(p + "ln_1.bias", {C}, 0, 0, false);
    b.wattn = add_param(p + "attn.c_attn.weight", {3 * C, C}, std, 0, true);
    b.battn = add_param(p + "attn.c_attn.bias", {3 * C}, 0, 0, false);
    b.wproj = add_param(p + "attn.c_proj.weight", {C, C}, proj_std, 0, true);
    b.bproj = add_param(p + "attn.c_proj.bias", {C}, 0, 0, false);
    b.wln2 = add_param(p + "ln_2.weight", {C}, 0, 1, false);
    b.bln2 = add_param(p + "ln_2.bias", {C}, 0, 0, false);
    b.wfc = add_param(p + "mlp.c_fc.weight", {4 * C, C}, std, 0, true);
    b.bfc = add_param(p + "mlp.c_fc.bias", {4 * C}, 0, 0, false);
    b.wmlp = add_param(p + "mlp.c_proj.weight", {C, 4 * C}, proj_std, 0, true);
    b.bmlp = add_param(p + "mlp.c_proj.bias", {C}, 0, 0, false);
    blocks_.push_back(b);
  }
  lnf_w_ = add_param("transformer.ln_f.weight", {C}, 0, 1, false);
  lnf_b_ = add_param("transformer.ln_f.bias", {C}, 0, 0, false);
}

void Gpt::init(uint64_t seed) {
  for (Parameter& p : params_) {
    Tensor host = p.tensor.device().is_cpu() ? p.tensor : Tensor::empty(p.tensor.shape(), p.tensor.dtype());
    if (p.init_std > 0) {
      init_normal(host, seed, p.name, 0.0, p.init_std, p.global_shape, p.offsets);
    } else {
      host.fill_(p.init_value);
    }
    if (host.raw_data() != p.tensor.raw_data()) p.tensor.copy_(host);
  }
}

Tensor Gpt::weight(int i) const {
  const Tensor& p = params_[i].tensor;
  return config_.compute_dtype == DType::f32 ? p : cast(p, config_.compute_dtype);
}

int64_t Gpt::num_parameters() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += shape_numel(p.global_shape);
  return n;
}

double Gpt::flops_per_token() const {
  const double n = static_cast<double>(num_parameters() - shape_numel(params_[wpe_].global_shape));
  return 6.0 * n + 6.0 * static_cast<double>(config_.n_layer * config_.n_embd * config_.block_size);
}

Tensor Gpt::block_forward(const Block& b, const Tensor& x, uint64_t dropout_key,
                          uint64_t stream) const {
  const int64_t B = x.size(0), T = x.size(1), C = config_.n_embd, H = config_.n_head;
  const double p = config_.dropout;
  auto drop = [&](const Tensor& t, uint64_t site) {
    return dropout(t, p, dropout_key, stream + site);
  };
  // Attention: [B,T,C] -> q, k, v [B,H,T,D] -> [B,T,C].
  Tensor h = layer_norm(x, weight(b.wln1), weight(b.bln1));
  auto qkv = split(linear(h, weight(b.wattn), weight(b.battn)), {C, C, C}, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };
  Tensor a = causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]));
  a = reshape(transpose(a, 1, 2), {B, T, C});
  Tensor y = add(x, drop(linear(a, weight(b.wproj), weight(b.bproj)), 0));
  // MLP: [B,T,C] -> [B,T,4C] -> [B,T,C].
  Tensor m = gelu(linear(layer_norm(y, weight(b.wln2), weight(b.bln2)), weight(b.wfc),
                         weight(b.bfc)));
  return add(y, drop(linear(m, weight(b.wmlp), weight(b.bmlp)), 1));
}

Tensor Gpt::hidden(const Tensor& idx, uint64_t dropout_key, uint64_t step,
                   int64_t sample_offset) const {
  TN_CHECK(idx.ndim() == 2, "model", "input must be [B, T], got ", idx.str());
  const int64_t T = idx.size(1);
  TN_CHECK(T <= config_.block_size, "model", "sequence length ", T, " exceeds model.block_size ",
           config_.block_size);
  (void)sample_offset;
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t);
  Tensor tok = embedding(idx, weight(wte_));  // [B,T,C]
  Tensor pe = embedding(Tensor::from_vector(pos, {T}).to(idx.device()), weight(wpe_));  // [T,C]
  const uint64_t base = dropout_stream(step, config_.n_layer, 0);
  Tensor x = dropout(add(tok, pe), config_.dropout, dropout_key, base);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const uint64_t stream = base + 1 + kSitesPerLayer * l;
    const Block& b = blocks_[l];
    if (config_.checkpoint_activations) {
      x = checkpoint([this, &b, stream, dropout_key](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{block_forward(b, in[0], dropout_key, stream)};
          }, {x})[0];
    } else {
      x = block_forward(b, x, dropout_key, stream);
    }
  }
  return layer_norm(x, weight(lnf_w_), weight(lnf_b_));
}

Tensor Gpt::logits(const Tensor& idx) const {
  Tensor x = hidden(idx, 0, 0, 0);
  return linear(x, weight(wte_));  // tied head: x · wteᵀ, [B,T,V]
}

Tensor Gpt::loss(const Tensor& idx, const Tensor& targets, uint64_t dropout_key, uint64_t step,
                 int64_t sample_offset) const {
  TN_CHECK(targets.shape() == idx.shape(), "model", "targets ", targets.str(), " must match inputs ",
           idx.str());
  Tensor x = hidden(idx, dropout_key, step, sample_offset);
  Tensor logits = linear(x, weight(wte_));  // tied head: x · wteᵀ, [B,T,V]
  return cross_entropy(logits, targets);
}

}  // namespace ternion::model

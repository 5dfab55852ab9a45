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
  TN_CHECK(c.checkpoint_layers >= 0, "model", "train.checkpoint_layers must be >= 0, got ", c.checkpoint_layers);
  TN_CHECK(c.compute_dtype == DType::f32 || c.compute_dtype == DType::bf16 || c.compute_dtype == DType::f16,
           "model", "compute dtype must be f32, bf16 or f16, got ", dtype_name(c.compute_dtype));
}

// Dropout sites inside one step: 0 is the embedding, 1 + 2l + s is site s (attention
// output, MLP output) of global layer l; stream = step * sites_per_step + site.
constexpr uint64_t kSitesPerLayer = 2;
uint64_t dropout_stream(uint64_t step, int64_t n_layer, uint64_t site) {
  return step * (kSitesPerLayer * static_cast<uint64_t>(n_layer) + 1) + site;
}

}  // namespace

int Gpt::add_param(std::string name, Shape shape, Split split, double init_std, double init_value, bool decay) {
  const int64_t r = shard_.tp_rank, t = shard_.tp_size;
  // Even ranges of a dim over the tp ranks (the vocabulary may split unevenly).
  const auto range = [&](int64_t n) { return std::pair<int64_t, int64_t>{n * r / t, n * (r + 1) / t}; };
  std::vector<Box> boxes;
  switch (t == 1 ? Split::kReplicated : split) {  // one rank holds every parameter whole
    case Split::kReplicated: boxes = whole_box(shape); break;
    case Split::kColumn:
    case Split::kVocab: {
      const auto [b, e] = range(shape[0]);
      boxes = {range_box(shape, 0, b, e)};
      break;
    }
    case Split::kColumnQkv: {  // the q, k and v rows of this rank's heads
      const int64_t third = shape[0] / 3;
      const auto [b, e] = range(third);
      for (int64_t j = 0; j < 3; ++j) boxes.push_back(range_box(shape, 0, j * third + b, j * third + e));
      break;
    }
    case Split::kRow: {
      const auto [b, e] = range(shape[1]);
      boxes = {range_box(shape, 1, b, e)};
      break;
    }
  }
  Parameter p = make_parameter(std::move(name), std::move(shape), std::move(boxes), config_.device);
  p.tp_replicated = split == Split::kReplicated;
  p.primary = !p.tp_replicated || shard_.tp_rank == 0;
  p.init_std = init_std;
  p.init_value = init_value;
  p.weight_decay = decay;
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

Gpt::Gpt(const GptConfig& config, const GptShard& shard) : config_(config), shard_(shard) {
  check_config(config_);
  const int64_t L = config_.n_layer;
  if (shard_.num_layers < 0) shard_.num_layers = L - shard_.first_layer;
  TN_CHECK(shard_.first_layer >= 0 && shard_.num_layers >= 0 && shard_.first_layer + shard_.num_layers <= L,
           "model", "shard layers [", shard_.first_layer, ", ", shard_.first_layer + shard_.num_layers,
           ") lie outside the model's ", L, " layers (model.n_layer)");
  TN_CHECK(shard_.tp_size >= 1 && shard_.tp_rank >= 0 && shard_.tp_rank < shard_.tp_size, "model",
           "tensor-parallel rank ", shard_.tp_rank, " of ", shard_.tp_size, " is not a rank of the group");
  TN_CHECK(config_.n_head % shard_.tp_size == 0, "model", "model.n_head = ", config_.n_head,
           " is not divisible by the tensor-parallel size ", shard_.tp_size);
  TN_CHECK(config_.vocab_size >= shard_.tp_size, "model", "model.vocab_size = ", config_.vocab_size,
           " is smaller than the tensor-parallel size ", shard_.tp_size);
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(L));
  if (shard_.embeddings) {
    wte_ = add_param("transformer.wte.weight", {V, C}, Split::kVocab, std, 0, true);
    wpe_ = add_param("transformer.wpe.weight", {config_.block_size, C}, Split::kReplicated, std, 0, true);
  }
  for (int64_t l = shard_.first_layer; l < shard_.first_layer + shard_.num_layers; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    Block b;
    b.layer = l;
    b.wln1 = add_param(p + "ln_1.weight", {C}, Split::kReplicated, 0, 1, false);
    b.bln1 = add_param(p + "ln_1.bias", {C}, Split::kReplicated, 0, 0, false);
    b.wattn = add_param(p + "attn.c_attn.weight", {3 * C, C}, Split::kColumnQkv, std, 0, true);
    b.battn = add_param(p + "attn.c_attn.bias", {3 * C}, Split::kColumnQkv, 0, 0, false);
    b.wproj = add_param(p + "attn.c_proj.weight", {C, C}, Split::kRow, proj_std, 0, true);
    b.bproj = add_param(p + "attn.c_proj.bias", {C}, Split::kReplicated, 0, 0, false);
    b.wln2 = add_param(p + "ln_2.weight", {C}, Split::kReplicated, 0, 1, false);
    b.bln2 = add_param(p + "ln_2.bias", {C}, Split::kReplicated, 0, 0, false);
    b.wfc = add_param(p + "mlp.c_fc.weight", {4 * C, C}, Split::kColumn, std, 0, true);
    b.bfc = add_param(p + "mlp.c_fc.bias", {4 * C}, Split::kColumn, 0, 0, false);
    b.wmlp = add_param(p + "mlp.c_proj.weight", {C, 4 * C}, Split::kRow, proj_std, 0, true);
    b.bmlp = add_param(p + "mlp.c_proj.bias", {C}, Split::kReplicated, 0, 0, false);
    blocks_.push_back(b);
  }
  if (shard_.head) {
    lnf_w_ = add_param("transformer.ln_f.weight", {C}, Split::kReplicated, 0, 1, false);
    lnf_b_ = add_param("transformer.ln_f.bias", {C}, Split::kReplicated, 0, 0, false);
    if (!shard_.embeddings) {  // the tied head's own copy of wte (last pipeline stage)
      wte_ = add_param("transformer.wte.weight", {V, C}, Split::kVocab, std, 0, true);
      params_[wte_].tied_copy = true;
      params_[wte_].primary = false;
    }
  }
}

void Gpt::init(uint64_t seed) {
  for (Parameter& p : params_) init_parameter(p, seed);
}

Tensor Gpt::weight(int i) const {
  const Tensor& p = params_[i].tensor;
  return config_.compute_dtype == DType::f32 ? p : cast(p, config_.compute_dtype);
}

void Gpt::require(bool holds, const char* what) const {
  TN_CHECK(holds, "model", "this shard (layers ", shard_.first_layer, "..", shard_.first_layer + shard_.num_layers,
           ", embeddings ", shard_.embeddings ? "yes" : "no", ", head ", shard_.head ? "yes" : "no", ") does not hold ",
           what);
  // The tensor-parallel forward (collectives between the column- and row-parallel
  // halves, vocabulary-parallel loss) is not part of this model yet: its parameters are.
  TN_CHECK(shard_.tp_size == 1, "model", "the forward of a tensor-parallel shard (tp size ", shard_.tp_size,
           ") is not available; build the model with tp size 1");
}

bool Gpt::is_whole() const {
  return shard_.embeddings && shard_.head && shard_.first_layer == 0 && shard_.num_layers == config_.n_layer &&
         shard_.tp_size == 1;
}

int64_t Gpt::num_parameters() const {
  const int64_t C = config_.n_embd;
  return config_.vocab_size * C + config_.block_size * C + config_.n_layer * (12 * C * C + 13 * C) + 2 * C;
}

int64_t Gpt::num_local_elements() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.tensor.numel();
  return n;
}

double Gpt::flops_per_token() const {
  const double n = static_cast<double>(num_parameters() - config_.block_size * config_.n_embd);
  return 6.0 * n + 6.0 * static_cast<double>(config_.n_layer * config_.n_embd * config_.block_size);
}

Tensor Gpt::block_forward(const Block& b, const Tensor& x, const DropoutContext& d, bool selective) const {
  const int64_t B = x.size(0), T = x.size(1), C = config_.n_embd, H = config_.n_head;
  const double p = d.active ? config_.dropout : 0.0;
  // Element (b, t, c) of this micro-batch is element (sample_offset + b, t, c) of the
  // step's global batch: its mask is that element's.
  const uint64_t offset = static_cast<uint64_t>(d.sample_offset) * static_cast<uint64_t>(T * C);
  auto drop = [&](const Tensor& t, uint64_t site) {
    return dropout(t, p, d.key, dropout_stream(d.step, config_.n_layer, 1 + kSitesPerLayer * b.layer + site),
                   offset);
  };
  // The element-wise results a matmul saves: recomputed for its backward when selective.
  auto cheap = [selective](const RecomputeFn& fn, const std::vector<Tensor>& in) {
    return selective ? recomputable(fn, in) : fn(in);
  };
  const RecomputeFn ln = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); };
  // Attention: [B,T,C] -> q, k, v [B,H,T,D] -> [B,T,C].
  Tensor h = cheap(ln, {x, weight(b.wln1), weight(b.bln1)});
  auto qkv = split(linear(h, weight(b.wattn), weight(b.battn)), {C, C, C}, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };
  Tensor a = cheap([B, T, C](const std::vector<Tensor>& in) { return reshape(transpose(in[0], 1, 2), {B, T, C}); },
                   {causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]))});
  Tensor y = add(x, drop(linear(a, weight(b.wproj), weight(b.bproj)), 0));
  // MLP: [B,T,C] -> [B,T,4C] -> [B,T,C].
  Tensor fc = linear(cheap(ln, {y, weight(b.wln2), weight(b.bln2)}), weight(b.wfc), weight(b.bfc));
  Tensor m = cheap([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {fc});
  return add(y, drop(linear(m, weight(b.wmlp), weight(b.bmlp)), 1));
}

Tensor Gpt::embed(const Tensor& idx, const DropoutContext& d) const {
  require(shard_.embeddings, "the embeddings");
  TN_CHECK(idx.ndim() == 2, "model", "input must be [B, T], got ", idx.str());
  const int64_t T = idx.size(1);
  TN_CHECK(T <= config_.block_size, "model", "sequence length ", T, " exceeds model.block_size ",
           config_.block_size);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t);
  Tensor tok = embedding(idx, weight(wte_));  // [B,T,C]
  Tensor pe = embedding(Tensor::from_vector(pos, {T}).to(idx.device()), weight(wpe_));  // [T,C]
  const uint64_t offset = static_cast<uint64_t>(d.sample_offset) * static_cast<uint64_t>(T * config_.n_embd);
  return dropout(add(tok, pe), d.active ? config_.dropout : 0.0, d.key, dropout_stream(d.step, config_.n_layer, 0),
                 offset);
}

Tensor Gpt::blocks(const Tensor& input, const DropoutContext& d) const {
  require(true, "its blocks");
  Tensor x = input;
  const auto chosen = static_cast<size_t>(config_.checkpoint_layers);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    const ActivationCheckpointing mode =
        chosen == 0 || i < chosen ? config_.activation_checkpointing : ActivationCheckpointing::kNone;
    if (mode == ActivationCheckpointing::kFull) {
      x = checkpoint([this, &b, d](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{block_forward(b, in[0], d, false)};
          }, {x})[0];
    } else {
      x = block_forward(b, x, d, mode == ActivationCheckpointing::kSelective);
    }
  }
  return x;
}

Tensor Gpt::head_logits(const Tensor& x) const {
  require(shard_.head, "the head");
  Tensor h = layer_norm(x, weight(lnf_w_), weight(lnf_b_));
  return linear(h, weight(wte_));  // tied head: h · wteᵀ, [B,T,V]
}

Tensor Gpt::head_loss(const Tensor& x, const Tensor& targets) const {
  TN_CHECK(targets.ndim() == 2 && x.ndim() == 3 && targets.size(0) == x.size(0) && targets.size(1) == x.size(1),
           "model", "targets ", targets.str(), " must be [B, T] of the activations ", x.str());
  return cross_entropy(head_logits(x), targets);
}

Tensor Gpt::logits(const Tensor& idx) const {
  require(is_whole(), "the whole model");
  return head_logits(blocks(embed(idx)));
}

Tensor Gpt::loss(const Tensor& idx, const Tensor& targets, const DropoutContext& d) const {
  require(is_whole(), "the whole model");
  TN_CHECK(targets.shape() == idx.shape(), "model", "targets ", targets.str(), " must match inputs ",
           idx.str());
  return head_loss(blocks(embed(idx, d), d), targets);
}

Tensor Gpt::loss(const Tensor& idx, const Tensor& targets, uint64_t dropout_key, uint64_t step,
                 int64_t sample_offset) const {
  return loss(idx, targets, DropoutContext{dropout_key, step, sample_offset, true});
}

}  // namespace ternion::model

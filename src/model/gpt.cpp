#include "model/gpt.h"

#include <cmath>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "parallel/tensor_parallel.h"

namespace ternion::model {

using namespace autograd;
using parallel::all_gather_from_sp;
using parallel::copy_to_tp;
using parallel::reduce_from_tp;
using parallel::reduce_scatter_to_sp;

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
    case Split::kColumn: {
      const auto [b, e] = range(shape[0]);
      boxes = {range_box(shape, 0, b, e)};
      break;
    }
    case Split::kVocab:  // this rank's vocabulary rows, then padding
      boxes = {range_box(shape, 0, vocab_.begin, vocab_.begin + vocab_.count)};
      break;
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
  const int64_t padding = t > 1 && split == Split::kVocab ? vocab_.rows - vocab_.count : 0;
  Parameter p =
      make_parameter(std::move(name), std::move(shape), std::move(boxes), config_.device, padding, config_.allocate);
  p.tp_replicated = split == Split::kReplicated;
  p.grad_summed_over_tp = p.tp_replicated && sp();
  p.primary = !p.tp_replicated || shard_.tp_rank == 0;
  p.init_std = init_std;
  p.init_value = init_value;
  p.weight_decay = decay;
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

Gpt::Gpt(const GptConfig& config, const GptShard& shard, parallel::Communicator* tp)
    : config_(config), shard_(shard), tp_(tp) {
  check_config(config_);
  const int64_t L = config_.n_layer;
  if (shard_.num_layers < 0) shard_.num_layers = L - shard_.first_layer;
  TN_CHECK(shard_.chunks >= 1 && (shard_.chunks == 1 || shard_.chunk_stride >= shard_.num_layers), "model",
           "a shard of ", shard_.chunks, " chunks of ", shard_.num_layers, " layers needs chunk_stride >= ",
           shard_.num_layers, ", got ", shard_.chunk_stride);
  const int64_t last_first = shard_.first_layer + (shard_.chunks - 1) * shard_.chunk_stride;
  TN_CHECK(shard_.first_layer >= 0 && shard_.num_layers >= 0 && last_first + shard_.num_layers <= L,
           "model", "shard layers [", shard_.first_layer, ", ", last_first + shard_.num_layers,
           ") lie outside the model's ", L, " layers (model.n_layer)");
  TN_CHECK(shard_.tp_size >= 1 && shard_.tp_rank >= 0 && shard_.tp_rank < shard_.tp_size, "model",
           "tensor-parallel rank ", shard_.tp_rank, " of ", shard_.tp_size, " is not a rank of the group");
  TN_CHECK(config_.n_head % shard_.tp_size == 0, "model", "model.n_head = ", config_.n_head,
           " is not divisible by the tensor-parallel size ", shard_.tp_size);
  TN_CHECK(config_.vocab_size >= shard_.tp_size, "model", "model.vocab_size = ", config_.vocab_size,
           " is smaller than the tensor-parallel size ", shard_.tp_size);
  TN_CHECK(!tp_ || shard_.tp_size == 1 || (tp_->size() == shard_.tp_size && tp_->rank() == shard_.tp_rank), "model",
           "tensor-parallel rank ", shard_.tp_rank, " of ", shard_.tp_size, " was given ", tp_->describe(),
           " as its group, where this process is rank ", tp_->rank());
  TN_CHECK(!sp() || config_.block_size % shard_.tp_size == 0, "model", "sequence parallelism splits the ",
           "block's tokens over the tensor-parallel group: model.block_size = ", config_.block_size,
           " must be divisible by parallel.tp = ", shard_.tp_size);
  vocab_ = parallel::vocab_shard(config_.vocab_size, shard_.tp_rank, shard_.tp_size);
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(L));
  if (shard_.embeddings) {
    wte_ = add_param("transformer.wte.weight", {V, C}, Split::kVocab, std, 0, true);
    wpe_ = add_param("transformer.wpe.weight", {config_.block_size, C}, Split::kReplicated, std, 0, true);
  }
  std::vector<int64_t> layers;  // chunk by chunk
  for (int64_t c = 0; c < shard_.chunks; ++c)
    for (int64_t i = 0; i < shard_.num_layers; ++i) layers.push_back(shard_.first_layer + c * shard_.chunk_stride + i);
  for (const int64_t l : layers) {
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
  // The regions ZeRO-3 gathers, in forward order.
  if (shard_.embeddings) {
    embed_region_ = static_cast<int>(regions_.size());
    regions_.push_back({wte_, wpe_});
  }
  for (Block& b : blocks_) {
    b.region = static_cast<int>(regions_.size());
    regions_.emplace_back();
    for (int i = b.wln1; i <= b.bmlp; ++i) regions_.back().push_back(i);
  }
  if (shard_.head) {
    head_region_ = static_cast<int>(regions_.size());
    regions_.push_back({lnf_w_, lnf_b_, wte_});
  }
}

void Gpt::enter(int r) const {
  if (hooks_) hooks_->before_forward(r);
}

Tensor Gpt::leave(int r, const Tensor& out) const {
  if (!hooks_) return out;
  hooks_->after_forward(r);
  ParameterHooks* h = hooks_;
  return backward_hook(out, [h, r] { h->before_backward(r); });
}

void Gpt::init(uint64_t seed) {
  TN_CHECK(config_.allocate, "model", "a model built to describe its parameters (GptConfig::allocate = false) has none to initialise");
  for (Parameter& p : params_) init_parameter(p, seed);
}

Tensor Gpt::weight(int i) const {
  const Tensor& p = params_[i].tensor;
  return config_.compute_dtype == DType::f32 ? p : cast(p, config_.compute_dtype);
}

void Gpt::require(bool holds, const char* what) const {
  TN_CHECK(holds, "model", "this shard (layers ", shard_.first_layer, "..", shard_.first_layer + shard_.num_layers,
           ", embeddings ", shard_.embeddings ? "yes" : "no", ", head ", shard_.head ? "yes" : "no", ", tp rank ",
           shard_.tp_rank, " of ", shard_.tp_size, ") does not hold ", what);
}

bool Gpt::holds_all_layers() const {
  const bool contiguous = shard_.chunks == 1 || shard_.chunk_stride == shard_.num_layers;
  return shard_.embeddings && shard_.head && shard_.first_layer == 0 && contiguous &&
         shard_.chunks * shard_.num_layers == config_.n_layer;
}

Shape Gpt::activation_shape(int64_t B, int64_t T) const {
  if (sp()) return {B * T / shard_.tp_size, config_.n_embd};
  return {B, T, config_.n_embd};
}

uint64_t Gpt::element_offset(const DropoutContext& d, int64_t tokens, int64_t T) const {
  const auto C = static_cast<uint64_t>(config_.n_embd);
  uint64_t first = static_cast<uint64_t>(d.sample_offset) * static_cast<uint64_t>(T) * C;
  if (sp()) first += static_cast<uint64_t>(shard_.tp_rank) * static_cast<uint64_t>(tokens) * C;
  return first;
}

parallel::Communicator& Gpt::tp() const {
  TN_CHECK(tp_, "model", "the forward of a tensor-parallel shard (rank ", shard_.tp_rank, " of ", shard_.tp_size,
           ") needs its tensor-parallel group; this model was built without one");
  return *tp_;
}

Tensor Gpt::enter_tp(const Tensor& h, int64_t T) const {
  if (shard_.tp_size == 1) return h;
  if (!sp()) return copy_to_tp(h, tp());
  const int64_t tokens = h.size(0) * shard_.tp_size;
  return all_gather_from_sp(h, {tokens / T, T, config_.n_embd}, tp());
}

Tensor Gpt::leave_tp(const Tensor& partial) const {
  if (shard_.tp_size == 1) return partial;
  return sp() ? reduce_scatter_to_sp(partial, tp()) : reduce_from_tp(partial, tp());
}

bool Gpt::is_whole() const { return holds_all_layers() && shard_.tp_size == 1; }

int64_t Gpt::num_parameters() const {
  const int64_t C = config_.n_embd;
  return config_.vocab_size * C + config_.block_size * C + config_.n_layer * (12 * C * C + 13 * C) + 2 * C;
}

int64_t Gpt::num_local_elements() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += shape_numel(p.local_shape);
  return n;
}

double Gpt::flops_per_token() const {
  const double n = static_cast<double>(num_parameters() - config_.block_size * config_.n_embd);
  return 6.0 * n + 6.0 * static_cast<double>(config_.n_layer * config_.n_embd * config_.block_size);
}

Tensor Gpt::block_forward(const Block& b, const Tensor& x, const DropoutContext& d, bool selective,
                          int64_t T) const {
  enter(b.region);
  const int64_t tp = shard_.tp_size, C = config_.n_embd, H = config_.n_head / tp, Cl = C / tp;
  const int64_t B = sp() ? x.size(0) * tp / T : x.size(0);
  const double p = d.active ? config_.dropout : 0.0;
  // Element (b, t, c) of this micro-batch is element (sample_offset + b, t, c) of the
  // step's global batch: its mask is that element's (with sequence parallelism x holds
  // this rank's tokens, which start at element_offset).
  const uint64_t offset = element_offset(d, sp() ? x.size(0) : B * T, T);
  auto drop = [&](const Tensor& t, uint64_t site) {
    return dropout(t, p, d.key, dropout_stream(d.step, config_.n_layer, 1 + kSitesPerLayer * b.layer + site),
                   offset);
  };
  // The element-wise results a matmul saves: recomputed for its backward when selective.
  auto cheap = [selective](const RecomputeFn& fn, const std::vector<Tensor>& in) {
    return selective ? recomputable(fn, in) : fn(in);
  };
  const RecomputeFn ln = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); };
  // A row-parallel layer: this rank's partial product, reduced over tp, then the bias
  // once (one fused linear without tensor parallelism).
  auto row_parallel = [&](const Tensor& in, int w, int bias) {
    if (tp == 1) return linear(in, weight(w), weight(bias));
    return add(leave_tp(linear(in, weight(w))), weight(bias));
  };
  // Attention over this rank's H heads: [B,T,C] -> q, k, v [B,H,T,D] -> [B,T,H·D].
  Tensor h = cheap(ln, {x, weight(b.wln1), weight(b.bln1)});
  auto qkv = split(linear(enter_tp(h, T), weight(b.wattn), weight(b.battn)), {Cl, Cl, Cl}, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / config_.n_head}), 1, 2); };
  Tensor a = cheap([B, T, Cl](const std::vector<Tensor>& in) { return reshape(transpose(in[0], 1, 2), {B, T, Cl}); },
                   {causal_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]))});
  Tensor y = add(x, drop(row_parallel(a, b.wproj, b.bproj), 0));
  // MLP: [B,T,C] -> [B,T,4C/tp] -> [B,T,C].
  Tensor fc = linear(enter_tp(cheap(ln, {y, weight(b.wln2), weight(b.bln2)}), T), weight(b.wfc), weight(b.bfc));
  Tensor m = cheap([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {fc});
  Tensor out = add(y, drop(row_parallel(m, b.wmlp, b.bmlp), 1));
  if (hooks_) hooks_->after_forward(b.region);
  return out;
}

Tensor Gpt::embed(const Tensor& idx, const DropoutContext& d) const {
  require(shard_.embeddings, "the embeddings");
  TN_CHECK(idx.ndim() == 2, "model", "input must be [B, T], got ", idx.str());
  const int64_t T = idx.size(1);
  TN_CHECK(T <= config_.block_size, "model", "sequence length ", T, " exceeds model.block_size ",
           config_.block_size);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t);
  const int64_t tp = shard_.tp_size;
  enter(embed_region_);
  Tensor tok;  // [B,T,C], or this rank's tokens with sequence parallelism
  if (tp == 1) {
    tok = embedding(idx, weight(wte_));
  } else {  // each rank looks up its vocabulary rows; the parts add up to the lookup
    TN_CHECK(!sp() || (idx.numel() % tp == 0), "model", "sequence parallelism: the ", idx.numel(),
             " tokens of ", idx.str(), " do not split over parallel.tp = ", tp);
    tok = leave_tp(vocab_embedding(idx, weight(wte_), vocab_.begin, vocab_.count, vocab_.vocab));
  }
  if (sp()) {  // this rank's tokens' positions
    const int64_t n = tok.size(0), first = shard_.tp_rank * n;
    pos.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>((first + i) % T);
  }
  Tensor pe = embedding(Tensor::from_vector(pos, {static_cast<int64_t>(pos.size())}).to(idx.device()),
                        weight(wpe_));  // [T,C], or [tokens, C]
  const uint64_t offset = element_offset(d, sp() ? tok.size(0) : idx.numel(), T);
  return leave(embed_region_, dropout(add(tok, pe), d.active ? config_.dropout : 0.0, d.key,
                                      dropout_stream(d.step, config_.n_layer, 0), offset));
}

Tensor Gpt::blocks(const Tensor& input, const DropoutContext& d, int64_t seq_len, int chunk) const {
  TN_CHECK(chunk >= -1 && chunk < shard_.chunks, "model", "chunk ", chunk, " of a shard of ", shard_.chunks,
           " chunks");
  TN_CHECK(chunk >= 0 || shard_.chunks == 1 || shard_.chunk_stride == shard_.num_layers, "model",
           "the shard's ", shard_.chunks, " chunks are not contiguous layers: run them one chunk at a time");
  TN_CHECK(sp() || (input.ndim() == 3 && input.size(2) == config_.n_embd), "model",
           "blocks need the activation [B, T, ", config_.n_embd, "], got ", input.str());
  TN_CHECK(!sp() || (seq_len > 0 && input.ndim() == 2 && input.size(1) == config_.n_embd &&
                     (input.size(0) * shard_.tp_size) % seq_len == 0),
           "model", "with sequence parallelism blocks need this rank's tokens [B*T/tp, ", config_.n_embd,
           "] and the sequence length T, got ", input.str(), " and T = ", seq_len);
  const int64_t T = sp() ? seq_len : input.size(1);
  Tensor x = input;
  const auto chosen = static_cast<size_t>(config_.checkpoint_layers);
  const size_t per_chunk = static_cast<size_t>(shard_.num_layers);
  const size_t begin = chunk < 0 ? 0 : static_cast<size_t>(chunk) * per_chunk;
  const size_t end = chunk < 0 ? blocks_.size() : begin + per_chunk;
  for (size_t i = begin; i < end; ++i) {
    const Block& b = blocks_[i];
    const ActivationCheckpointing mode =
        chosen == 0 || i < chosen ? config_.activation_checkpointing : ActivationCheckpointing::kNone;
    if (mode == ActivationCheckpointing::kFull) {
      x = checkpoint([this, &b, d, T](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{block_forward(b, in[0], d, false, T)};
          }, {x})[0];
    } else {
      x = block_forward(b, x, d, mode == ActivationCheckpointing::kSelective, T);
    }
    if (hooks_) {
      ParameterHooks* h = hooks_;
      x = backward_hook(x, [h, r = b.region] { h->before_backward(r); });
    }
  }
  return x;
}

Tensor Gpt::head_logits(const Tensor& x) const {
  require(shard_.head, "the head");
  TN_CHECK(shard_.tp_size == 1, "model", "the whole logits of a tensor-parallel shard (tp size ", shard_.tp_size,
           ") exist on no rank; use head_loss, or sample from the exported model.h5");
  enter(head_region_);
  Tensor h = layer_norm(x, weight(lnf_w_), weight(lnf_b_));
  return leave(head_region_, linear(h, weight(wte_)));  // tied head: h · wteᵀ, [B,T,V]
}

Tensor Gpt::head_loss(const Tensor& x, const Tensor& targets) const {
  TN_CHECK(targets.ndim() == 2 && x.shape() == activation_shape(targets.size(0), targets.size(1)), "model",
           "targets ", targets.str(), " must be [B, T] of the activations ", x.str());
  if (shard_.tp_size == 1) return cross_entropy(head_logits(x), targets);
  require(shard_.head, "the head");
  enter(head_region_);
  Tensor h = enter_tp(layer_norm(x, weight(lnf_w_), weight(lnf_b_)), targets.size(1));
  Tensor logits = linear(h, weight(wte_));  // this rank's vocabulary columns (and padding)
  return leave(head_region_, parallel::vocab_parallel_cross_entropy(logits, targets, vocab_, tp()));
}

Tensor Gpt::logits(const Tensor& idx) const {
  require(is_whole(), "the whole model");
  return head_logits(blocks(embed(idx)));
}

Tensor Gpt::loss(const Tensor& idx, const Tensor& targets, const DropoutContext& d) const {
  require(holds_all_layers(), "every layer");
  TN_CHECK(targets.shape() == idx.shape(), "model", "targets ", targets.str(), " must match inputs ",
           idx.str());
  return head_loss(blocks(embed(idx, d), d, idx.ndim() == 2 ? idx.size(1) : -1), targets);
}

Tensor Gpt::loss(const Tensor& idx, const Tensor& targets, uint64_t dropout_key, uint64_t step,
                 int64_t sample_offset) const {
  return loss(idx, targets, DropoutContext{dropout_key, step, sample_offset, true});
}

}  // namespace ternion::model

// GPT-2 as nanoGPT defines it, so weights move to and from the PyTorch ecosystem:
// token and learned position embeddings, L pre-LayerNorm blocks (causal self-attention
// with fused qkv, GELU-tanh MLP), final LayerNorm, output head tied to wte.
// Parameter names and shapes are nanoGPT's state_dict names and shapes.
//
// A Gpt is built for one shard of the model (GptShard: a range of layers, the embeddings,
// the head, a tensor-parallel rank); its parameters are exactly that shard's, each
// describing its boxes of the global tensor (parameter.h), so initialisation and
// checkpoints address the global tensor. Layer names stay global.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/parameter.h"
#include "parallel/communicator.h"
#include "parallel/tensor_parallel.h"

namespace ternion::model {

// What a block keeps for its backward (the bytes per layer: docs/config.md,
// train.activation_checkpointing). None: every tensor its ops save. Selective: the block's
// input, the attention's q, k, v, output and row log-sum-exp, the residual after attention,
// the MLP's first matmul output and the LayerNorm statistics; the LayerNorm outputs, the
// attention output's [B,T,C] copy and the GELU output are recomputed from them right before
// the backward of the matmul that reads each. Full: only the block's input; the whole block
// is recomputed during its backward. All three give the same bits (dropout masks are a pure
// function of their position).
enum class ActivationCheckpointing { kNone, kSelective, kFull };

struct GptConfig {
  int64_t vocab_size = 256;
  int64_t block_size = 256;
  int64_t n_layer = 6;
  int64_t n_head = 6;
  int64_t n_embd = 384;
  double dropout = 0.0;
  ActivationCheckpointing activation_checkpointing = ActivationCheckpointing::kNone;
  // How many of the shard's blocks, from its first, checkpoint as above; the others keep
  // everything. 0 (or more than the shard holds): all of them.
  int64_t checkpoint_layers = 0;
  // Where parameters, activations and gradients live (inputs must be there too).
  Device device = Device::cpu();
  // Mixed precision: bf16 or f16 computes with 16-bit copies of the f32 master weights,
  // cast at each use (autograd::cast, whose backward adds the f32 gradient into the
  // master's .grad). f32: compute in the parameters' own dtype, no casts.
  DType compute_dtype = DType::f32;
  // false: the parameters are only described (Parameter::local_shape, no tensors), so a
  // planner can lay out a shard of any model; such a Gpt cannot run or be initialised.
  bool allocate = true;
};

// Which part of the model a Gpt holds: a contiguous range of global layers (a pipeline
// stage), whether it holds the embeddings (first stage) and ln_f with the head (last
// stage), and its tensor-parallel rank among tp_size. The default is the whole model.
// A stage that holds the head but not the embeddings keeps a tied copy of wte.
//
// Tensor parallelism (tp_size > 1, Megatron-LM's layout): attn.c_attn holds the q, k and v
// rows of this rank's n_head/tp heads (three boxes) and mlp.c_fc its 4C/tp rows
// (column-parallel); both c_proj hold the matching C/tp columns (row-parallel), their
// biases added once after the all-reduce; wte holds this rank's vocabulary rows
// (parallel::vocab_shard, padded to a multiple of 64 rows), which the embedding looks up
// and the tied head turns into this rank's logits for the vocabulary-parallel loss.
// LayerNorms, wpe and the row-parallel biases are replicated.
// sequence_parallel (with tp_size > 1): the LayerNorm, dropout and residual regions hold
// this rank's B·T/tp tokens ([B·T/tp, C], parallel/tensor_parallel.h); the column-parallel
// inputs are all-gathered and the row-parallel outputs reduce-scattered instead of
// all-reduced, and the replicated parameters' gradients are summed over tp.
//
// Chunks (the interleaved pipeline schedule): the shard holds `chunks` ranges of
// num_layers layers each, chunk c starting at first_layer + c·chunk_stride (a stage s of p
// with v chunks of L/(p·v) layers: first_layer s·L/(p·v), chunk_stride p·L/(p·v)). The
// embeddings feed chunk 0 and the head follows the last chunk.
struct GptShard {
  int64_t first_layer = 0;
  int64_t num_layers = -1;  // per chunk; -1: every layer from first_layer on (one chunk)
  int64_t chunks = 1;
  int64_t chunk_stride = 0;
  bool embeddings = true;
  bool head = true;
  int tp_rank = 0;
  int tp_size = 1;
  bool sequence_parallel = false;
};

// Whether dropout is on (training) and what selects the masks of one micro-batch: the
// run's key, the step, and the global index of its first sample in the step's global
// batch. A mask element depends only on (key, step, global layer, site, global sample,
// position, channel), never on how the batch was split over ranks and micro-batches.
// The default is off (evaluation, sampling).
struct DropoutContext {
  uint64_t key = 0;
  uint64_t step = 0;
  int64_t sample_offset = 0;
  bool active = false;
};

// ZeRO-3's seam: the forward tells which parameters it is about to read and when it is done
// with them, region by region, and records a hook that fires right before each region's
// backward. A region is the embeddings (wte, wpe), one block, or the head (ln_f and the tied
// wte); Gpt::regions() lists each region's parameter indices. Under full recomputation a
// block's forward runs again inside its backward, between before_backward and the end of
// that backward, and calls before_forward/after_forward again.
class ParameterHooks {
 public:
  virtual ~ParameterHooks() = default;
  virtual void before_forward(int region) = 0;
  virtual void after_forward(int region) = 0;
  // From an identity recorded at the region's output (autograd::backward_hook), so it runs
  // before any of the region's own backward.
  virtual void before_backward(int region) = 0;
};

class Gpt {
 public:
  // Builds the shard's parameters (uninitialised). Throws naming the key when the sizes
  // do not fit or the shard lies outside the model. The forward of a shard with
  // tp_size > 1 needs its tensor-parallel group `tp` (size tp_size, this process rank
  // tp_rank), which must outlive the model and every graph it records; without one the
  // shard only describes its parameters (checkpoint tools, tests).
  explicit Gpt(const GptConfig& config, const GptShard& shard = {}, parallel::Communicator* tp = nullptr);

  // Initialises every parameter as a pure function of (seed, name, global index):
  // weights N(0, 0.02), both c_proj weights N(0, 0.02/sqrt(2L)), biases 0, LN weight 1.
  // Drawn on the host and copied to config.device, so every device and every layout
  // starts identical.
  void init(uint64_t seed);

  // The forward in stage pieces (a pipeline stage runs the ones it holds). Between them
  // flows the activation, [B,T,C], or with sequence parallelism this rank's tokens
  // [B·T/tp, C] (activation_shape).
  // embed: idx [B,T] (i32) -> x (token + position embedding, dropout).
  Tensor embed(const Tensor& idx, const DropoutContext& d = {}) const;
  // This shard's blocks: x -> x; those of chunk `chunk` only, or with chunk = -1 all of them
  // in order (one chunk, or chunks that are contiguous). seq_len is T; needed with sequence
  // parallelism (where x does not show it), read from x otherwise.
  Tensor blocks(const Tensor& x, const DropoutContext& d = {}, int64_t seq_len = -1, int chunk = -1) const;
  // ln_f, the tied head and the mean cross-entropy over the B*T tokens: x, targets [B,T]
  // -> scalar (f32 on config.device, f64 when the parameters are f64); with tensor
  // parallelism the vocabulary-parallel loss, equal on every tp rank.
  Tensor head_loss(const Tensor& x, const Tensor& targets) const;
  // ln_f and the tied head: x [B,T,C] -> logits [B,T,V] (tp size 1 only: no tp rank
  // ever holds the whole logits).
  Tensor head_logits(const Tensor& x) const;
  // The activation's shape for B samples of T tokens.
  Shape activation_shape(int64_t B, int64_t T) const;

  // The whole chain, for a shard holding the whole model: idx, targets [B,T] -> loss.
  // Without a DropoutContext (or with an inactive one) no dropout: evaluation.
  Tensor loss(const Tensor& idx, const Tensor& targets, const DropoutContext& d = {}) const;
  // Training: dropout on, masks selected by (dropout_key, step, sample_offset).
  Tensor loss(const Tensor& idx, const Tensor& targets, uint64_t dropout_key, uint64_t step,
              int64_t sample_offset = 0) const;
  // idx [B,T] -> logits [B,T,V], no dropout (whole model).
  Tensor logits(const Tensor& idx) const;

  const GptConfig& config() const { return config_; }
  const GptShard& shard() const { return shard_; }
  bool is_whole() const;  // holds every layer, the embeddings and the head, tp size 1
  // Every layer, the embeddings and the head, of any tp size (loss() runs on it).
  bool holds_all_layers() const;
  // This rank's vocabulary rows of wte (the whole vocabulary at tp size 1).
  const parallel::VocabShard& vocab_shard() const { return vocab_; }
  // This shard's regions in forward order (chunk by chunk): each one's parameter indices.
  const std::vector<std::vector<int>>& regions() const { return regions_; }
  // Hooks the forward calls from now on (null: none). They must outlive every graph recorded
  // while they are set.
  void set_parameter_hooks(ParameterHooks* hooks) { hooks_ = hooks; }
  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  // The whole model's parameter count (every shard answers the same; the tied head once).
  int64_t num_parameters() const;
  // Elements this shard holds (tied copies included).
  int64_t num_local_elements() const;
  // Forward+backward FLOPs per token of the whole model: 6N + 6·L·C·T (PaLM appendix B;
  // N excludes wpe).
  double flops_per_token() const;

 private:
  struct Block {
    int64_t layer = 0;  // global layer index
    int region = 0;
    int wln1, bln1, wattn, battn, wproj, bproj, wln2, bln2, wfc, bfc, wmlp, bmlp;  // indices
  };
  // selective: the cheap tensors are recomputable() (ActivationCheckpointing::kSelective).
  Tensor block_forward(const Block& b, const Tensor& x, const DropoutContext& d, bool selective, int64_t T) const;
  bool sp() const { return shard_.sequence_parallel && shard_.tp_size > 1; }
  // With sequence parallelism, global index of this rank's first activation element of a
  // micro-batch whose first sample is sample_offset (dropout masks).
  uint64_t element_offset(const DropoutContext& d, int64_t tokens, int64_t T) const;
  // Into and out of a tensor-parallel region (identity at tp size 1).
  Tensor enter_tp(const Tensor& h, int64_t T) const;
  Tensor leave_tp(const Tensor& partial) const;
  parallel::Communicator& tp() const;  // throws when built without one
  // kind: how the parameter is split over tp (see gpt.cpp).
  enum class Split { kReplicated, kColumn, kColumnQkv, kRow, kVocab };
  int add_param(std::string name, Shape shape, Split split, double init_std, double init_value, bool decay);
  // Parameter i as the forward uses it: cast to config.compute_dtype when that is 16-bit.
  Tensor weight(int i) const;
  void require(bool holds, const char* what) const;

  GptConfig config_;
  GptShard shard_;
  parallel::Communicator* tp_ = nullptr;
  parallel::VocabShard vocab_;
  std::vector<Parameter> params_;
  std::vector<Block> blocks_;
  int wte_ = -1, wpe_ = -1, lnf_w_ = -1, lnf_b_ = -1;
  std::vector<std::vector<int>> regions_;
  int embed_region_ = -1, head_region_ = -1;
  ParameterHooks* hooks_ = nullptr;
  // Around region r's forward, and its output recorded through the backward hook.
  void enter(int r) const;
  Tensor leave(int r, const Tensor& out) const;
};

}  // namespace ternion::model

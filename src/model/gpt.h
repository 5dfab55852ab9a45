// GPT-2 as nanoGPT defines it, so weights move to and from the PyTorch ecosystem:
// token and learned position embeddings, L pre-LayerNorm blocks (causal self-attention
// with fused qkv, GELU-tanh MLP), final LayerNorm, output head tied to wte.
// Parameter names and shapes are nanoGPT's state_dict names and shapes.
//
// Seams for later parallelism: a Gpt owns a contiguous range of blocks (pipeline
// stages), and each Parameter records the global shape it is a block of (tensor
// parallel shards), so initialisation and checkpoints address the global tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ternion::model {

struct GptConfig {
  int64_t vocab_size = 256;
  int64_t block_size = 256;
  int64_t n_layer = 6;
  int64_t n_head = 6;
  int64_t n_embd = 384;
  double dropout = 0.0;
  // Recompute each block during backward instead of keeping its activations.
  bool checkpoint_activations = false;
  // Where parameters, activations and gradients live (inputs must be there too).
  Device device = Device::cpu();
  // Mixed precision: bf16 or f16 computes with 16-bit copies of the f32 master weights,
  // cast at each use (autograd::cast, whose backward adds the f32 gradient into the
  // master's .grad). f32: compute in the parameters' own dtype, no casts.
  DType compute_dtype = DType::f32;
};

struct Parameter {
  std::string name;    // nanoGPT state_dict name, e.g. "transformer.h.0.attn.c_attn.weight"
  Tensor tensor;       // this process's part (today: the whole tensor)
  Shape global_shape;  // shape of the whole parameter
  Shape offsets;       // where `tensor` starts inside the global tensor
  double init_std = 0; // N(0, init_std) for weights; 0 with init_value for LN/bias
  double init_value = 0;
  bool weight_decay = false;  // AdamW decays parameters with two or more dims
};

class Gpt {
 public:
  // Builds the parameters (uninitialised). Throws naming the key when the sizes do not fit.
  explicit Gpt(const GptConfig& config);

  // Initialises every parameter as a pure function of (seed, name, global index):
  // weights N(0, 0.02), both c_proj weights N(0, 0.02/sqrt(2L)), biases 0, LN weight 1.
  // Drawn on the host and copied to config.device, so every device starts identical.
  void init(uint64_t seed);

  // idx, targets [B,T] (i32, on config.device). Returns the mean cross-entropy over the
  // B*T tokens, an f32 scalar on config.device (f64 when the parameters are f64).
  // dropout_seed/stream_base select the dropout masks (unused when dropout is 0);
  // sample_offset is the global index of this batch's first sample, so masks do not
  // depend on how the global batch was split across ranks and micro-batches.
  Tensor loss(const Tensor& idx, const Tensor& targets, uint64_t dropout_key = 0,
              uint64_t step = 0, int64_t sample_offset = 0) const;
  // idx [B,T] -> logits [B,T,V], no dropout.
  Tensor logits(const Tensor& idx) const;

  const GptConfig& config() const { return config_; }
  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  int64_t num_parameters() const;  // counts the tied head once
  // Forward+backward FLOPs per token: 6N + 6·L·C·T (PaLM appendix B; N excludes wpe).
  double flops_per_token() const;

 private:
  struct Block {
    int wln1, bln1, wattn, battn, wproj, bproj, wln2, bln2, wfc, bfc, wmlp, bmlp;  // indices
  };
  Tensor hidden(const Tensor& idx, uint64_t dropout_key, uint64_t step, int64_t sample_offset) const;
  Tensor block_forward(const Block& b, const Tensor& x, uint64_t dropout_key, uint64_t stream_base) const;
  int add_param(std::string name, Shape shape, double init_std, double init_value, bool decay);
  // Parameter i as the forward uses it: cast to config.compute_dtype when that is 16-bit.
  Tensor weight(int i) const;

  GptConfig config_;
  std::vector<Parameter> params_;
  std::vector<Block> blocks_;
  int wte_ = -1, wpe_ = -1, lnf_w_ = -1, lnf_b_ = -1;
};

}  // namespace ternion::model

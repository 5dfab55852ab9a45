#include "train/model_shard.h"

#include "checkpoint/weights_file.h"

namespace ternion::train {

model::GptShard shard_for(const ModelConfig& model, const parallel::Layout& l, const parallel::Coord& c,
                          const std::vector<int>& pp_layers, int virtual_stages) {
  model::GptShard s;
  if (virtual_stages > 1) {
    const int64_t chunks = static_cast<int64_t>(l.pp) * virtual_stages;
    TN_CHECK(model.n_layer % chunks == 0 && pp_layers.empty(), "parallel", "model.n_layer = ", model.n_layer,
             " does not split into parallel.pp · parallel.virtual_stages = ", chunks, " chunks");
    s.num_layers = model.n_layer / chunks;
    s.first_layer = c.pp * s.num_layers;
    s.chunks = virtual_stages;
    s.chunk_stride = l.pp * s.num_layers;
  } else if (pp_layers.empty()) {
    TN_CHECK(model.n_layer % l.pp == 0, "parallel", "model.n_layer = ", model.n_layer,
             " is not divisible by parallel.pp = ", l.pp, " (or give parallel.pp_layers)");
    s.num_layers = model.n_layer / l.pp;
    s.first_layer = c.pp * s.num_layers;
  } else {
    TN_CHECK(static_cast<int>(pp_layers.size()) == l.pp, "parallel", "parallel.pp_layers lists ", pp_layers.size(),
             " stages but parallel.pp = ", l.pp);
    for (int i = 0; i < c.pp; ++i) s.first_layer += pp_layers[i];
    s.num_layers = pp_layers[c.pp];
  }
  s.embeddings = c.pp == 0;
  s.head = c.pp == l.pp - 1;
  s.tp_rank = c.tp;
  s.tp_size = l.tp;
  return s;
}

model::GptConfig gpt_config(const Config& c, Device device, DType compute) {
  model::GptConfig g;
  g.device = device;
  g.compute_dtype = compute;
  g.vocab_size = c.model.vocab_size;
  g.block_size = c.model.block_size;
  g.n_layer = c.model.n_layer;
  g.n_head = c.model.n_head;
  g.n_embd = c.model.n_embd;
  g.dropout = c.model.dropout;
  using AC = model::ActivationCheckpointing;
  const std::string& ac = c.train.activation_checkpointing;
  g.activation_checkpointing = ac == "full" ? AC::kFull : ac == "selective" ? AC::kSelective : AC::kNone;
  g.checkpoint_layers = c.train.checkpoint_layers;
  return g;
}

model::GptShard shard_of(const Config& config, const parallel::Layout& l, const parallel::Coord& c) {
  const int v = config.parallel.pp_schedule == "interleaved" ? config.parallel.virtual_stages : 1;
  model::GptShard shard = shard_for(config.model, l, c, config.parallel.pp_layers, v);
  shard.sequence_parallel = config.parallel.sequence_parallel && l.tp > 1;
  return shard;
}

std::unique_ptr<model::Gpt> build_model(const Config& config, const parallel::ParallelContext& ctx, DType compute) {
  const model::GptShard shard = shard_of(config, ctx.layout, ctx.coord);
  // A context that only describes a layout (tools, tests: its tp group is not of the
  // layout's size) builds shards that describe their parameters but cannot run forward.
  parallel::Communicator* tp = ctx.tp && ctx.tp->size() == ctx.layout.tp ? ctx.tp.get() : nullptr;
  auto gpt = std::make_unique<model::Gpt>(gpt_config(config, ctx.device, compute), shard, tp);
  if (config.model.init_from.empty()) {
    gpt->init(static_cast<uint64_t>(config.run.seed));
    return gpt;
  }
  // The file holds whole tensors: read each, then keep this shard's boxes.
  std::vector<checkpoint::NamedTensor> named;
  for (auto& p : gpt->parameters()) named.push_back({p.name, Tensor::empty(p.global_shape)});
  checkpoint::read_weights(config.model.init_from, named);
  for (size_t i = 0; i < named.size(); ++i) model::load_from_full(gpt->parameters()[i], named[i].tensor);
  return gpt;
}

std::vector<optim::ParamRef> param_refs(model::Gpt& gpt) {
  std::vector<optim::ParamRef> refs;
  for (auto& p : gpt.parameters()) refs.push_back({p.name, p.tensor, p.weight_decay, p.primary});
  return refs;
}

}  // namespace ternion::train

#include "train/train_state.h"

#include <filesystem>
#include <vector>

#include "checkpoint/format.h"
#include "core/error.h"

namespace ternion::train {

// The whole training state this process holds, staged as host copies for a checkpoint.
// With data parallelism every dp rank holds the same replica: only dp rank 0 writes it.
checkpoint::State stage_state(const Config& config, const model::Gpt& gpt, const optim::AdamW& opt,
                              int64_t next_step, const data::SamplerState& sampler,
                              const parallel::ParallelContext& ctx) {
  checkpoint::State s;
  s.step = next_step;
  s.scalars["optim.step"] = opt.steps();
  s.scalars["data.step"] = sampler.step;
  s.scalars["data.sample"] = sampler.sample;
  s.scalars["rng.seed"] = config.run.seed;
  s.config_yaml = to_yaml(config);
  const parallel::Layout& l = ctx.layout;
  s.layout = {{"dp", std::to_string(l.dp)}, {"tp", std::to_string(l.tp)}, {"pp", std::to_string(l.pp)},
              {"order", l.order_str()}};
  if (ctx.coord.dp != 0) return s;
  const auto& params = gpt.parameters();
  const auto& st = const_cast<optim::AdamW&>(opt).state();
  for (size_t i = 0; i < params.size(); ++i) {
    s.tensors.push_back(checkpoint::whole(std::string(checkpoint::kParamPrefix) + params[i].name, params[i].tensor));
    if (st[i].m.defined()) {
      s.tensors.push_back(checkpoint::whole(std::string(checkpoint::kExpAvgPrefix) + params[i].name, st[i].m));
      s.tensors.push_back(checkpoint::whole(std::string(checkpoint::kExpAvgSqPrefix) + params[i].name, st[i].v));
    }
  }
  return s;
}

// Loads `dir` into the model, optimizer and sampler; returns the step to continue from.
int64_t load_state(const std::string& dir, const Config& config, model::Gpt& gpt, optim::AdamW& opt,
                   data::BatchSampler& sampler, const parallel::Layout& layout, std::ostream& log) {
  const checkpoint::Manifest m = checkpoint::read_manifest(dir);
  // Same tensor shapes can still be a different model (n_head): compare the sizes.
  const Config saved = parse_config(m.config_yaml, (std::filesystem::path(dir) / "manifest.yaml").string());
  const auto check = [&](const char* key, int64_t was, int64_t now) {
    TN_CHECK(was == now, "resume", "checkpoint '", dir, "' was written for ", key, " = ", was,
             " but this run has ", key, " = ", now, "; it cannot resume this state");
  };
  check("model.vocab_size", saved.model.vocab_size, config.model.vocab_size);
  check("model.block_size", saved.model.block_size, config.model.block_size);
  check("model.n_layer", saved.model.n_layer, config.model.n_layer);
  check("model.n_head", saved.model.n_head, config.model.n_head);
  check("model.n_embd", saved.model.n_embd, config.model.n_embd);
  auto& params = gpt.parameters();
  auto& st = opt.state();
  const auto read = [&](const std::string& name, Tensor& t) {
    Tensor host = t.device().is_cpu() && t.dtype() == DType::f32 && t.is_contiguous() ? t : Tensor::empty(t.shape());
    checkpoint::read_tensor(m, name, t.shape(), std::vector<int64_t>(t.shape().size(), 0), host);
    if (host.raw_data() != t.raw_data()) t.copy_(host);
  };
  const bool has_moments = m.scalars.count("optim.step") && m.scalars.at("optim.step") > 0;
  for (size_t i = 0; i < params.size(); ++i) {
    read(std::string(checkpoint::kParamPrefix) + params[i].name, params[i].tensor);
    if (has_moments) {
      if (!st[i].m.defined()) {
        st[i].m = Tensor::zeros(params[i].tensor.shape(), params[i].tensor.dtype(), params[i].tensor.device());
        st[i].v = Tensor::zeros(params[i].tensor.shape(), params[i].tensor.dtype(), params[i].tensor.device());
      }
      read(std::string(checkpoint::kExpAvgPrefix) + params[i].name, st[i].m);
      read(std::string(checkpoint::kExpAvgSqPrefix) + params[i].name, st[i].v);
    }
  }
  opt.set_steps(m.scalars.count("optim.step") ? m.scalars.at("optim.step") : 0);
  sampler.set_state({m.scalars.at("data.step"), m.scalars.at("data.sample")});
  log << "ternion train: resumed from " << dir << " at step " << m.step;
  if (m.layout.count("dp") && m.layout.at("dp") != std::to_string(layout.dp))
    log << " (written with dp=" << m.layout.at("dp") << ", resuming with dp=" << layout.dp << ")";
  log << "\n";
  return m.step;
}

int64_t resume(const std::string& how, const Config& config, model::Gpt& gpt, optim::AdamW& opt,
               data::BatchSampler& sampler, parallel::ParallelContext& ctx, std::ostream& log) {
  if (how == "none") return 0;
  std::vector<std::string> candidates;
  if (how == "auto") {
    candidates = checkpoint::complete_checkpoints(config.run.dir);
    const std::string latest = checkpoint::latest_checkpoint(config.run.dir);
    // 'latest' first; then the other complete ones, newest first.
    if (!latest.empty()) {
      std::erase(candidates, latest);
      candidates.insert(candidates.begin(), latest);
    }
  } else {
    candidates = {how};
  }
  parallel::Communicator& world = *ctx.world;
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::string error;
    int64_t step = 0;
    try {
      step = load_state(candidates[i], config, gpt, opt, sampler, ctx.layout, log);
    } catch (const Error& e) {
      error = e.what();
    }
    // Every rank must continue from the same state: one rank's failure is everyone's.
    if (world.all_true(error.empty())) return step;
    // A checkpoint for another model is the user's mistake, not damage: never skip it.
    const bool wrong_model = !world.all_true(error.find("[resume]") != 0);
    if (how != "auto" || wrong_model || i + 1 == candidates.size()) {
      if (error.empty()) {
        fail("resume", str_cat("another rank could not load '", candidates[i], "' (its error is in its log)"));
      }
      throw Error(error);
    }
    log << "ternion train: warning: skipping damaged checkpoint " << candidates[i] << ": "
        << (error.empty() ? "another rank could not load it" : error) << "\n";
    // Partially loaded state is overwritten by the next candidate in full.
  }
  return 0;
}

}  // namespace ternion::train

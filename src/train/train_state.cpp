#include "train/train_state.h"

#include <bit>
#include <filesystem>
#include <vector>

#include "checkpoint/format.h"
#include "core/error.h"

namespace ternion::train {

namespace {

// The loss scaler's scale is stored as its IEEE-754 bits, so a resume is exact.
constexpr const char* kScaleBits = "scaler.scale_bits";
constexpr const char* kScaleGood = "scaler.good_steps";
constexpr const char* kScaleSkipped = "scaler.skipped_steps";
// PowerSGD (FORMAT.md "PowerSGD state").
constexpr const char* kPowerSgdRank = "powersgd.rank";
constexpr const char* kPowerSgdSteps = "powersgd.steps";
constexpr std::string_view kPowerSgdQ = "powersgd/q/";
constexpr std::string_view kPowerSgdError = "powersgd/error/";

// Box k of parameter p, applied to a tensor laid out like p.tensor (its moments).
Tensor box_rows(const model::Parameter& p, const Tensor& t, size_t k) {
  if (t.ndim() == 0) return t;
  const int64_t r = p.row_begin(k);
  return t.slice(0, r, r + p.boxes[k].shape[0]);
}

// One dataset per box: "<name>", or "<name>@<k>" when the parameter has several boxes
// (FORMAT.md); the reader reassembles any box from them.
checkpoint::Entry entry(std::string name, const model::Parameter& p, const Tensor& t, size_t k) {
  if (p.boxes.size() > 1) name += "@" + std::to_string(k);
  checkpoint::Entry e = checkpoint::deferred(std::move(name), box_rows(p, t, k).contiguous());
  e.global_shape = p.global_shape;
  e.offsets = p.boxes[k].offsets;
  return e;
}

// Fills box k of t (laid out like p.tensor) from the checkpoint.
void read_box(checkpoint::Reader& m, const std::string& name, const model::Parameter& p, Tensor& t, size_t k) {
  Tensor dst = box_rows(p, t, k);
  const bool direct = dst.device().is_cpu() && dst.dtype() == DType::f32 && dst.is_contiguous();
  Tensor host = direct ? dst : Tensor::empty(dst.shape());
  m.read(name, p.global_shape, p.boxes[k].offsets, host);
  if (!direct) dst.copy_(host);
}

// prefix + name + suffix (appended, not concatenated with +: see -Wrestrict).
std::string dataset(std::string_view prefix, const std::string& name, const std::string& suffix = {}) {
  std::string out(prefix);
  out.append(name);
  out.append(suffix);
  return out;
}

// A flat piece of a parameter (fp, within `values`, which starts at the parameter's flat
// offset `begin`) as the dataset `<prefix><name><suffix>`.
checkpoint::Entry piece_entry(const std::string& name, const model::Parameter& p, const Tensor& values,
                              int64_t begin, const model::FlatPiece& fp) {
  const int64_t a = fp.local_begin - begin;
  checkpoint::Entry e = checkpoint::deferred(name, values.slice(0, a, a + fp.box.numel()).view(fp.box.shape));
  e.global_shape = p.global_shape;
  e.offsets = fp.box.offsets;
  return e;
}

// Fills the piece fp of `values` (as piece_entry) from the checkpoint.
void read_piece(checkpoint::Reader& m, const std::string& name, const model::Parameter& p, Tensor values,
                int64_t begin, const model::FlatPiece& fp) {
  const int64_t a = fp.local_begin - begin;
  Tensor dst = values.slice(0, a, a + fp.box.numel());
  const bool direct = dst.device().is_cpu() && dst.dtype() == DType::f32;
  Tensor host = direct ? dst.view(fp.box.shape) : Tensor::empty(fp.box.shape);
  m.read(name, p.global_shape, fp.box.offsets, host);
  if (!direct) dst.copy_(host.view({fp.box.numel()}));
}

// Each piece of this rank's ZeRO range, with its optimizer state index.
template <typename Fn>
void for_each_zero_piece(const ZeroSync& zero, const model::Gpt& gpt, Fn fn) {
  for (size_t i = 0; i < zero.pieces().size(); ++i) {
    const ZeroSync::Piece& pc = zero.pieces()[i];
    const model::Parameter& p = gpt.parameters()[static_cast<size_t>(pc.param)];
    fn(i, pc, p, model::flat_range_pieces(p, pc.param_offset, pc.param_offset + pc.numel));
  }
}

}  // namespace

checkpoint::State stage_state(const Config& config, const model::Gpt& gpt, const OptimizerStep& update,
                              int64_t next_step, const data::SamplerState& sampler,
                              const parallel::ParallelContext& ctx, const SyncState& sync) {
  const ZeroSync* zero = sync.zero;
  checkpoint::State s;
  s.step = next_step;
  const optim::AdamW& opt = update.adamw();
  const optim::GradScaler& scaler = update.scaler();
  s.scalars["optim.step"] = opt.steps();
  s.scalars["data.step"] = sampler.step;
  s.scalars["data.sample"] = sampler.sample;
  s.scalars["rng.seed"] = config.run.seed;
  s.scalars[kScaleBits] = std::bit_cast<int64_t>(scaler.scale());
  s.scalars[kScaleGood] = scaler.good_steps();
  s.scalars[kScaleSkipped] = scaler.skipped_steps();
  s.config_yaml = to_yaml(config);
  const parallel::Layout& l = ctx.layout;
  s.layout = {{"dp", std::to_string(l.dp)}, {"tp", std::to_string(l.tp)}, {"pp", std::to_string(l.pp)},
              {"order", l.order_str()}};
  const auto& st = const_cast<optim::AdamW&>(opt).state();
  if (const parallel::PowerSgd* ps = sync.powersgd) {  // every rank's error, dp rank 0's Q
    s.scalars[kPowerSgdRank] = config.parallel.powersgd.rank;
    s.scalars[kPowerSgdSteps] = ps->steps();
    const parallel::Coord& c = ctx.coord;
    for (size_t i = 0; i < ps->size(); ++i) {
      if (!ps->compressed(i)) continue;
      const Tensor& q = ps->q(i);
      if (c.dp == 0) {
        checkpoint::Entry e = checkpoint::whole(dataset(kPowerSgdQ, ps->name(i)), q.view({1, 1, q.size(0), q.size(1)}));
        e.global_shape = {l.pp, l.tp, q.size(0), q.size(1)};
        e.offsets = {c.pp, c.tp, 0, 0};
        s.tensors.push_back(std::move(e));
      }
      const Tensor& err = ps->error(i);
      if (!err.defined()) continue;
      checkpoint::Entry e =
          checkpoint::whole(dataset(kPowerSgdError, ps->name(i)), err.view({1, 1, 1, err.size(0), err.size(1)}));
      e.global_shape = {l.pp, l.dp, l.tp, err.size(0), err.size(1)};
      e.offsets = {c.pp, c.dp, c.tp, 0, 0};
      s.tensors.push_back(std::move(e));
    }
  }
  if (zero) {
    std::vector<int> written(zero->layout().buckets().size(), 0);  // datasets per bucket so far
    for_each_zero_piece(*zero, gpt, [&](size_t i, const ZeroSync::Piece& pc, const model::Parameter& p,
                                        const std::vector<model::FlatPiece>& fps) {
      if (!p.primary) return;
      const Tensor values = zero->piece_values(i);
      for (const model::FlatPiece& fp : fps) {
        std::string suffix = "@z";
        suffix += std::to_string(pc.bucket);
        suffix += '.';
        suffix += std::to_string(written[static_cast<size_t>(pc.bucket)]++);
        s.tensors.push_back(piece_entry(dataset(checkpoint::kParamPrefix, p.name, suffix), p, values, pc.param_offset, fp));
        if (!st[i].m.defined()) continue;
        s.tensors.push_back(piece_entry(dataset(checkpoint::kExpAvgPrefix, p.name, suffix), p, st[i].m, pc.param_offset, fp));
        s.tensors.push_back(piece_entry(dataset(checkpoint::kExpAvgSqPrefix, p.name, suffix), p, st[i].v, pc.param_offset, fp));
      }
    });
    return s;
  }
  if (ctx.coord.dp != 0) return s;
  const auto& params = gpt.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const model::Parameter& p = params[i];
    if (!p.primary) continue;
    for (size_t k = 0; k < p.boxes.size(); ++k) {
      s.tensors.push_back(entry(std::string(checkpoint::kParamPrefix) + p.name, p, p.tensor, k));
      if (st[i].m.defined()) {
        s.tensors.push_back(entry(std::string(checkpoint::kExpAvgPrefix) + p.name, p, st[i].m, k));
        s.tensors.push_back(entry(std::string(checkpoint::kExpAvgSqPrefix) + p.name, p, st[i].v, k));
      }
    }
  }
  return s;
}

LoadResult load_state(const std::string& dir, const Config& config, model::Gpt& gpt, OptimizerStep& update,
                      data::BatchSampler& sampler, const parallel::Layout& layout, std::ostream& log,
                      std::ostream& warn, const SyncState& sync, const parallel::Coord& coord) {
  const ZeroSync* zero = sync.zero;
  using Status = LoadResult::Status;
  checkpoint::Manifest m;
  Config saved;
  try {
    m = checkpoint::read_manifest(dir);
    saved = parse_config(m.config_yaml, (std::filesystem::path(dir) / "manifest.yaml").string());
  } catch (const Error& e) {
    return {Status::kDamaged, 0, e.what()};
  }
  // Same tensor shapes can still be a different model (n_head): compare the sizes.
  for (const auto& [key, was, now] : {std::tuple{"model.vocab_size", saved.model.vocab_size, config.model.vocab_size},
                                      std::tuple{"model.block_size", saved.model.block_size, config.model.block_size},
                                      std::tuple{"model.n_layer", saved.model.n_layer, config.model.n_layer},
                                      std::tuple{"model.n_head", saved.model.n_head, config.model.n_head},
                                      std::tuple{"model.n_embd", saved.model.n_embd, config.model.n_embd}}) {
    if (was != now)
      return {Status::kIncompatible, 0,
              str_cat("[resume] checkpoint '", dir, "' was written for ", key, " = ", was, " but this run has ", key,
                      " = ", now, "; it cannot resume this state")};
  }
  int64_t bytes_read = 0;
  try {
    checkpoint::Reader reader(m);
    auto& params = gpt.parameters();
    auto& st = update.adamw().state();
    const bool has_moments = m.scalars.count("optim.step") && m.scalars.at("optim.step") > 0;
    if (zero) {
      for_each_zero_piece(*zero, gpt, [&](size_t i, const ZeroSync::Piece& pc, const model::Parameter& p,
                                          const std::vector<model::FlatPiece>& fps) {
        for (const model::FlatPiece& fp : fps) {
          if (zero->stage() == 3)
            read_piece(reader, dataset(checkpoint::kParamPrefix, p.name), p, zero->piece_values(i), pc.param_offset, fp);
          if (!has_moments) continue;
          read_piece(reader, dataset(checkpoint::kExpAvgPrefix, p.name), p, st[i].m, pc.param_offset, fp);
          read_piece(reader, dataset(checkpoint::kExpAvgSqPrefix, p.name), p, st[i].v, pc.param_offset, fp);
        }
      });
    }
    for (size_t i = 0; i < params.size() && !(zero && zero->stage() == 3); ++i) {
      model::Parameter& p = params[i];
      for (size_t k = 0; k < p.boxes.size(); ++k) {
        read_box(reader, std::string(checkpoint::kParamPrefix) + p.name, p, p.tensor, k);
        if (has_moments && !zero) {
          read_box(reader, std::string(checkpoint::kExpAvgPrefix) + p.name, p, st[i].m, k);
          read_box(reader, std::string(checkpoint::kExpAvgSqPrefix) + p.name, p, st[i].v, k);
        }
      }
    }
    TN_CHECK(m.scalars.count("data.step") && m.scalars.count("data.sample"), "resume", "checkpoint '", dir,
             "' has no data position (data.step, data.sample)");
    if (parallel::PowerSgd* ps = sync.powersgd) {
      const auto same = [&](const char* key, int64_t now) { return m.layout.count(key) && m.layout.at(key) == std::to_string(now); };
      const bool carried = m.scalars.count(kPowerSgdRank) && m.scalars.at(kPowerSgdRank) == config.parallel.powersgd.rank &&
                           same("dp", layout.dp) && same("tp", layout.tp) && same("pp", layout.pp);
      if (carried) {
        for (size_t i = 0; i < ps->size(); ++i) {
          if (!ps->compressed(i)) continue;
          Tensor& q = ps->q(i);
          Tensor qh = Tensor::empty({1, 1, q.size(0), q.size(1)});
          reader.read(dataset(kPowerSgdQ, ps->name(i)), {layout.pp, layout.tp, q.size(0), q.size(1)},
                      {coord.pp, coord.tp, 0, 0}, qh);
          q.copy_(qh.view(q.shape()).to(q.device()));
          Tensor& err = ps->error(i);
          if (!err.defined()) continue;
          Tensor eh = Tensor::empty({1, 1, 1, err.size(0), err.size(1)});
          reader.read(dataset(kPowerSgdError, ps->name(i)), {layout.pp, layout.dp, layout.tp, err.size(0), err.size(1)},
                      {coord.pp, coord.dp, coord.tp, 0, 0}, eh);
          err.copy_(eh.view(err.shape()).to(err.device()));
        }
        ps->set_steps(m.scalars.count(kPowerSgdSteps) ? m.scalars.at(kPowerSgdSteps) : 0);
      } else {
        warn << "ternion train: warning: PowerSGD's state (each matrix's Q and error feedback) starts afresh: "
             << "checkpoint " << dir << " was written "
             << (m.scalars.count(kPowerSgdRank) ? str_cat("with parallel.powersgd.rank = ", m.scalars.at(kPowerSgdRank),
                                                          " at dp=", m.layout.count("dp") ? m.layout.at("dp") : "?",
                                                          " tp=", m.layout.count("tp") ? m.layout.at("tp") : "?",
                                                          " pp=", m.layout.count("pp") ? m.layout.at("pp") : "?")
                                                 : std::string("without PowerSGD"))
             << "; this run has rank " << config.parallel.powersgd.rank << " at " << layout.str() << "\n";
      }
    }
    bytes_read = reader.bytes_read();
  } catch (const Error& e) {
    return {Status::kDamaged, 0, e.what()};
  }
  if (saved.data.train != config.data.train)
    warn << "ternion train: warning: checkpoint " << dir << " was trained on data.train '" << saved.data.train
         << "'; this run continues on '" << config.data.train << "'\n";
  update.adamw().set_steps(m.scalars.count("optim.step") ? m.scalars.at("optim.step") : 0);
  // Checkpoints written before the scaler was saved resume with a fresh scaler.
  if (m.scalars.count(kScaleBits))
    update.scaler().set_state(std::bit_cast<double>(m.scalars.at(kScaleBits)), m.scalars.at(kScaleGood),
                              m.scalars.at(kScaleSkipped));
  sampler.set_state({m.scalars.at("data.step"), m.scalars.at("data.sample")});
  log << "ternion train: resumed from " << dir << " at step " << m.step;
  if (m.layout.count("dp") && m.layout.at("dp") != std::to_string(layout.dp))
    log << " (written with dp=" << m.layout.at("dp") << ", resuming with dp=" << layout.dp << ")";
  int64_t total = 0;
  for (const auto& [file, bytes] : m.file_bytes) total += bytes;
  log << "; rank 0 read " << bytes_read << " of the checkpoint's " << total << " bytes\n";
  return {Status::kOk, m.step, "", bytes_read};
}

int64_t resume(const std::string& how, const Config& config, model::Gpt& gpt, OptimizerStep& update,
               data::BatchSampler& sampler, parallel::ParallelContext& ctx, std::ostream& log,
               std::ostream& warn, const SyncState& sync, int64_t* bytes_read) {
  using Status = LoadResult::Status;
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
    const LoadResult r = load_state(candidates[i], config, gpt, update, sampler, ctx.layout, log, warn, sync, ctx.coord);
    // Every rank must continue from the same state: one rank's failure is everyone's.
    if (world.all_true(r.status == Status::kOk)) {
      if (bytes_read) *bytes_read = r.bytes_read;
      return r.step;
    }
    // A checkpoint for another model is the user's mistake, not damage: never skip it.
    const bool incompatible = !world.all_true(r.status != Status::kIncompatible);
    const std::string why = r.status == Status::kOk ? "another rank could not load it (its error is in its log)"
                                                    : r.message;
    if (how != "auto" || incompatible) {
      if (r.status == Status::kOk) fail("resume", str_cat("'", candidates[i], "': ", why));
      throw Error(r.message);
    }
    warn << "ternion train: warning: skipping damaged checkpoint " << candidates[i] << ": " << why << "\n";
    warn.flush();
    if (i + 1 == candidates.size())
      fail("resume", str_cat("every checkpoint in ", config.run.dir, "/checkpoints is damaged (", candidates.size(),
                             " tried, newest first; the last: ", why,
                             "). Start over with --resume none, or name a good checkpoint with --resume DIR"));
    // Partially loaded state is overwritten by the next candidate in full.
  }
  return 0;
}

}  // namespace ternion::train

#include "train/plan.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "core/allocator.h"
#include "model/gpt.h"
#include "parallel/flat_layout.h"
#include "parallel/pipeline_schedule.h"
#include "parallel/powersgd.h"
#include "train/grad_sync.h"
#include "train/model_shard.h"
#include "train/trainer.h"
#include "train/zero.h"

namespace ternion::train {

namespace {

// The nccl-tests byte counts of one call over n ranks (communicator.h), S the buffer's bytes.
int64_t all_reduce_bytes(int n, int64_t s) { return n > 1 ? 2 * (n - 1) * s / n : 0; }
int64_t gather_bytes(int n, int64_t s) { return n > 1 ? (n - 1) * s / n : 0; }  // all-gather, reduce-scatter

// What one block keeps per token of its micro-batch (what its ops save, model/gpt.h), by
// recompute mode, in elements of the compute dtype (`bulk`) and f32 statistics (`stats`:
// LayerNorm's mean and rstd, attention's log-sum-exp per head); tp splits the heads and the
// MLP, sequence parallelism the LayerNorm regions (the column-parallel inputs are gathered).
struct PerToken {
  double bulk = 0, stats = 0;
  double bytes(double elem) const { return elem * bulk + 4 * stats; }
};
PerToken block_per_token(const std::string& mode, int64_t C, int64_t H, int tp, bool sp) {
  const double t = tp, c = static_cast<double>(C), h = static_cast<double>(H);
  if (mode == "full") return {sp ? c / t : c, 0};  // the block's input only
  const bool none = mode == "none";
  if (tp == 1) return {none ? 17 * c : 10 * c, 4 + h};
  if (!sp) return {none ? 4 * c + 13 * c / t : 2 * c + 8 * c / t, 4 + h / t};
  return {none ? 2 * c + 15 * c / t : 2 * c + 10 * c / t, (4 + h) / t};
}

}  // namespace

Plan plan_model_states(const Config& config, int world_size, int64_t step, bool every_rank) {
  validate(config);
  Plan plan;
  plan.layout = resolve_layout(config, world_size);
  const parallel::Layout& l = plan.layout;
  const int stage = config.parallel.zero_stage;
  model::GptConfig gc = gpt_config(config, Device::cpu(), DType::f32);
  gc.allocate = false;
  // The activations each pipeline stage holds at once: the schedule's simulation, once.
  std::vector<int> peak_held;
  if (l.pp > 1) {
    const int v = config.parallel.pp_schedule == "interleaved" ? config.parallel.virtual_stages : 1;
    const int64_t m = config.train.global_batch_size / (config.train.micro_batch_size * l.dp);
    peak_held = parallel::simulate(parallel::parse_schedule(config.parallel.pp_schedule), l.pp, static_cast<int>(m), v)
                    .peak_held;
  }
  struct Described {
    std::unique_ptr<model::Gpt> gpt;
    std::vector<int64_t> numels;                 // each parameter's local elements
    std::unique_ptr<parallel::FlatLayout> flat;  // ZeRO's buckets, or the reducer's at stage 0
  };
  std::map<std::pair<int, int>, Described> described;  // by (tp, pp)
  for (int rank = 0; rank < l.world_size(); ++rank) {
    PlannedRank r;
    r.rank = rank;
    r.coord = parallel::coord_of(l, rank);
    if (!every_rank && (r.coord.dp != 0 || r.coord.tp != 0)) continue;
    // Ranks that differ only in their dp coordinate hold the same shard: described once.
    Described& d = described[{r.coord.tp, r.coord.pp}];
    if (!d.gpt) {
      d.gpt = std::make_unique<model::Gpt>(gc, shard_of(config, l, r.coord));
      for (const model::Parameter& p : d.gpt->parameters()) d.numels.push_back(shape_numel(p.local_shape));
      if (stage == 0)
        d.flat = std::make_unique<parallel::FlatLayout>(d.numels, zero_bucket_elements(config), 1);  // the reducer's
      else
        d.flat = std::make_unique<parallel::FlatLayout>(d.numels, zero_bucket_elements(config), l.dp,
                                                        zero_bucket_groups(*d.gpt));
    }
    const model::Gpt& gpt = *d.gpt;
    // The blocks live at the step's peak, as the allocator sees them (peak below).
    std::vector<int64_t> live;
    int64_t buffers = 0;
    const auto hold = [&live](int64_t bytes) {
      if (bytes > 0) live.push_back(bytes);
    };
    const std::vector<int64_t>& numels = d.numels;
    int64_t local = 0;
    for (const int64_t n : numels) local += n;
    const model::GptShard& shard = gpt.shard();
    const auto& params = gpt.parameters();
    const int dp = l.dp, tp = l.tp, pp = l.pp;
    const int64_t m = config.train.global_batch_size / (config.train.micro_batch_size * dp);
    const int64_t N = config.train.micro_batch_size * config.model.block_size, C = config.model.n_embd;
    const bool sp = shard.sequence_parallel;
    // Activations and their traffic are in the compute dtype: 2 bytes under bf16 and fp16
    // (CUDA only; not yet measured), 4 under fp32 (measured, train.plan).
    const int64_t elem_bytes = config.precision == "fp32" ? 4 : 2;
    const double elem = static_cast<double>(elem_bytes);
    int wte = -1;
    for (size_t i = 0; i < params.size(); ++i)
      if (params[i].name == "transformer.wte.weight") wte = static_cast<int>(i);
    // The gradient sync's traffic on dp: the loss average, and per stage its collectives.
    r.comm_dp = all_reduce_bytes(dp, 8);
    // PowerSGD's sizes (its compressor exists at dp > 1 from the start; it compresses from
    // start_step): the exact gradients' elements, every P's and every Q's, and each
    // compressed matrix's error buffer.
    const bool powersgd = config.parallel.powersgd.rank > 0 && dp > 1;
    const bool compressing = powersgd && step >= config.parallel.powersgd.start_step;
    int64_t psgd_exact = 0, psgd_p = 0, psgd_q = 0;
    std::vector<int64_t> psgd_errors;
    if (powersgd) {
      const parallel::PowerSgdOptions o = powersgd_options(config);
      for (const model::Parameter& p : params) {
        const int rr = parallel::PowerSgd::matrix_rank(p.local_shape, o);
        const int64_t n = shape_numel(p.local_shape);
        if (!rr) {
          psgd_exact += n;
          continue;
        }
        psgd_p += rr * p.local_shape[0];
        psgd_q += rr * (n / p.local_shape[0]);
        if (o.error_feedback) psgd_errors.push_back(n);
      }
    }
    // Its three all-reduces: the exact gradients, every P, every Q.
    const int64_t psgd = compressing ? all_reduce_bytes(dp, 4 * psgd_exact) + all_reduce_bytes(dp, 4 * psgd_p) +
                                           all_reduce_bytes(dp, 4 * psgd_q)
                                     : 0;
    std::vector<int64_t> sp_numels;  // gradients summed over tp after the dp sync
    int64_t tied_numel = wte >= 0 ? numels[static_cast<size_t>(wte)] : 0;  // summed over the embedding group
    if (stage == 0) {  // every tensor whole; AdamW's two moments per element
      r.params = r.grads = 4 * local;
      r.optim = 8 * local;
      if (compressing) {
        r.comm_dp += psgd;
      } else {  // the reducer's buckets (the same as a flat layout's over one rank) and their flags
        const parallel::FlatLayout& buckets = *d.flat;
        for (const parallel::FlatBucket& b : buckets.buckets())
          r.comm_dp += all_reduce_bytes(dp, 4 * (b.used + static_cast<int64_t>(b.params.size())));
      }
      for (size_t i = 0; i < params.size(); ++i)
        if (params[i].grad_summed_over_tp) sp_numels.push_back(numels[i]);
    } else {
      const parallel::FlatLayout& flat = *d.flat;
      const int64_t total = flat.total_numel();
      if (wte >= 0) tied_numel = flat.shard_size(flat.bucket_of(wte));  // its own bucket's range
      r.params = 4 * (stage == 3 ? total / l.dp : total);
      r.grads = 4 * (stage == 1 ? total : total / l.dp);
      int64_t mine = 0;  // this dp rank's elements of parameters (padding holds no state)
      for (int b = 0; b < static_cast<int>(flat.buckets().size()); ++b)
        for (const parallel::FlatSegment& s : flat.shard_pieces(b, r.coord.dp)) {
          mine += s.numel;
          if (params[static_cast<size_t>(s.param)].grad_summed_over_tp) sp_numels.push_back(s.numel);
        }
      r.optim = 8 * mine;
      r.comm_dp += all_reduce_bytes(dp, 8);  // the norm's sum over dp
      const int64_t gather = (config.precision == "fp32" ? 4 : 2);
      for (int b = 0; b < static_cast<int>(flat.buckets().size()); ++b) {
        const int64_t n = flat.buckets()[static_cast<size_t>(b)].numel;
        const int64_t rs = gather_bytes(dp, 4 * n), ag = gather_bytes(dp, 4 * n);
        if (stage == 1) r.comm_dp += (compressing ? 0 : rs) + ag;
        // A compressed step sends no reduce-scatter: PowerSGD averages the full gradient.
        if (stage == 2) r.comm_dp += (compressing ? 0 : m * rs) + ag;
        if (stage == 3) {
          r.comm_dp += m * 2 * gather_bytes(dp, gather * n) + (compressing ? 0 : m * rs);
          // The embeddings and the head are two regions: one stage holding both gathers wte twice.
          if (wte >= 0 && shard.embeddings && shard.head && flat.bucket_of(wte) == b)
            r.comm_dp += m * gather_bytes(dp, gather * n);
        }
      }
      if (compressing) r.comm_dp += psgd;
    }
    // tp: per micro-batch 4 all-reduces (or reduce-scatter + all-gather pairs) of the N·C
    // activation per layer, one after the embeddings, one in the head's backward, the
    // vocabulary-parallel loss's B·T and 2·B·T; per step the norm's sum and the
    // sequence-parallel gradients.
    if (tp > 1) {
      const int64_t layers = static_cast<int64_t>(gpt.regions().size()) - (shard.embeddings ? 1 : 0) - (shard.head ? 1 : 0);
      // Full recomputation runs each recomputed block's two forward collectives again.
      const std::string& mode = config.train.activation_checkpointing;
      const int64_t chosen = config.train.checkpoint_layers;
      const int64_t rerun = mode != "full" ? 0 : (chosen == 0 || chosen > layers ? layers : chosen);
      int64_t per_micro = (4 * layers + 2 * rerun) * all_reduce_bytes(tp, N * C * elem_bytes);
      if (shard.embeddings) per_micro += all_reduce_bytes(tp, N * C * elem_bytes);
      if (shard.head)
        per_micro += all_reduce_bytes(tp, N * C * elem_bytes) + all_reduce_bytes(tp, N * 4) + all_reduce_bytes(tp, 2 * N * 4);
      r.comm_tp = m * per_micro + all_reduce_bytes(tp, 8);
      int64_t sp_elems = 0;
      for (const int64_t n : sp_numels) sp_elems += n;
      if (sp && sp_elems > 0) r.comm_tp += all_reduce_bytes(tp, 4 * sp_elems);
    }
    // pp: the activations forward and their gradients back, per micro-batch and chunk (every
    // virtual stage but the last sends forward, every one but the first backward); the loss
    // and the norm over the stages; the tied embedding's gradient over the embedding group.
    if (pp > 1) {
      const int64_t act = N * C * elem_bytes / (sp ? tp : 1);
      const int64_t v = shard.chunks, virtual_stages = pp * v;
      for (int64_t c = 0; c < v; ++c) {
        const int64_t vs = c * pp + r.coord.pp;
        if (vs < virtual_stages - 1) r.comm_pp += m * act;
        if (vs > 0) r.comm_pp += m * act;
      }
      r.comm_pp += 2 * all_reduce_bytes(pp, 8);
      if (wte >= 0 && shard.embeddings != shard.head) r.comm_pp += all_reduce_bytes(2, 4 * tied_numel);  // first, last
    }
    double head_bytes = 0;  // the head's activations per micro-batch
    // Activations: one micro-batch's saved tensors on this stage, times what the schedule
    // holds at its peak (a chunk's share each), plus a full recomputation's re-run block.
    {
      const std::string& mode = config.train.activation_checkpointing;
      const int64_t H = config.model.n_head, T = config.model.block_size;
      const int64_t blocks = static_cast<int64_t>(gpt.regions().size()) - (shard.embeddings ? 1 : 0) - (shard.head ? 1 : 0);
      const int64_t chosen = config.train.checkpoint_layers;
      const int64_t recomputed = mode == "none" ? 0 : (chosen == 0 || chosen > blocks ? blocks : chosen);
      const double per_token = static_cast<double>(recomputed) * block_per_token(mode, C, H, tp, sp).bytes(elem) +
                               static_cast<double>(blocks - recomputed) * block_per_token("none", C, H, tp, sp).bytes(elem);
      double micro_bytes = static_cast<double>(N) * per_token;
      if (shard.embeddings) micro_bytes += 4.0 * static_cast<double>(N) + 4.0 * static_cast<double>(T) / (sp ? tp : 1);
      // Under bf16/fp16 every op reads a 16-bit cast of its weights; matmuls and LayerNorms
      // keep theirs for backward (the embeddings' lookups keep only the indices, a bias's add
      // nothing): per micro-batch, those of each region not recomputed.
      if (elem < 4) {
        const auto& regions = gpt.regions();
        for (size_t g = 0; g < regions.size(); ++g) {
          if (shard.embeddings && g == 0) continue;
          const bool is_block = !(shard.head && g + 1 == regions.size());
          const int64_t block_index = static_cast<int64_t>(g) - (shard.embeddings ? 1 : 0);
          if (is_block && mode == "full" && block_index < recomputed) continue;
          for (const int i : regions[g]) {
            const model::Parameter& p = params[static_cast<size_t>(i)];
            const bool weight = p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0;
            if (weight) micro_bytes += elem * static_cast<double>(numels[static_cast<size_t>(i)]);
          }
        }
      }
      head_bytes = 0;  // ln_f, the head's matmul input, the logits and the loss's row statistics
      if (shard.head) {
        const int64_t vocab_rows = wte >= 0 ? params[static_cast<size_t>(wte)].local_shape[0] : config.model.vocab_size;
        const double ln = (static_cast<double>(C) + 2) / (sp ? tp : 1);
        head_bytes = static_cast<double>(N) * (elem * (ln + static_cast<double>(C)) + 4.0 * (static_cast<double>(vocab_rows) + 2));
      }
      micro_bytes += head_bytes;
      double held = 1;
      if (pp > 1)
        held = static_cast<double>(peak_held.at(static_cast<size_t>(r.coord.pp))) / static_cast<double>(shard.chunks);
      double peak = held * micro_bytes;
      if (mode == "full" && recomputed > 0) {
        // During a micro-batch's backward (its head's tensors already released) one block
        // runs again, its saved tensors beside its kept input.
        const double rerun = static_cast<double>(N) * (block_per_token("none", C, H, tp, sp).bytes(elem) -
                                                       block_per_token("full", C, H, tp, sp).bytes(elem));
        peak = std::max(peak, (held - 1) * micro_bytes + micro_bytes - head_bytes + rerun);
      }
      r.activations_peak = static_cast<int64_t>(peak);
    }
    // The peak, as the caching allocator counts it (each block rounded up to its size class,
    // core/allocator.h): the model states and the sync's lasting buffers, plus the larger of
    // two moments of the last micro-batch's backward, with every activation still held:
    // its first op (the loss's logits gradient, the head's input and weight gradients) and
    // the start of the stage's last block (the head's activations gone, its weight gradient
    // made; the block's MLP projection's gradients). ZeRO-2/3 hold there the full gradient
    // buckets of the regions in backward (two reduce-scatters in flight at most), ZeRO-3
    // their gathered parameters and the next region's prefetch.
    {
      const int64_t vocab_rows = wte >= 0 ? params[static_cast<size_t>(wte)].local_shape[0] : config.model.vocab_size;
      const bool accumulated = m > 1;  // earlier micro-batches' gradients are held
      const auto rounded = [](const std::vector<int64_t>& blocks, int64_t& exact) {
        int64_t sum = 0;
        for (const int64_t b : blocks) {
          exact += b;
          sum += static_cast<int64_t>(CachingAllocator::round_size(static_cast<size_t>(b)));
        }
        return sum;
      };
      std::vector<int64_t> first, block;  // the two moments' extra blocks
      const auto& regions = gpt.regions();
      const int last_region = static_cast<int>(regions.size()) - 1;
      const int last_block = shard.head ? last_region - 1 : last_region;
      if (stage == 0) {
        for (const int64_t n : numels) {
          hold(4 * n);                      // the parameter
          hold(4 * n), hold(4 * n);         // AdamW's moments
          if (accumulated) hold(4 * n);     // its gradient
        }
        if (dp > 1) {  // the reducer's bucket buffers (gradients and one flag per parameter)
          const parallel::FlatLayout& buckets = *d.flat;
          for (const parallel::FlatBucket& b : buckets.buckets()) {
            hold(4 * (b.used + static_cast<int64_t>(b.params.size())));
            buffers += 4 * (b.used + static_cast<int64_t>(b.params.size()));
          }
        }
      } else {
        const parallel::FlatLayout& flat = *d.flat;
        const auto& bks = flat.buckets();
        for (int b = 0; b < static_cast<int>(bks.size()); ++b) {
          const int64_t n = bks[static_cast<size_t>(b)].numel, sh = flat.shard_size(b);
          hold(4 * (stage == 3 ? sh : n));     // parameters: flat, or the master shard
          hold(4 * (stage == 1 ? n : sh));     // gradients: flat, or the shard's
          for (const parallel::FlatSegment& piece : flat.shard_pieces(b, r.coord.dp)) hold(4 * piece.numel), hold(4 * piece.numel);
        }
        // A compressed step holds every full gradient bucket through its micro-batches.
        if (stage >= 2 && compressing)
          for (const parallel::FlatBucket& b : bks) hold(4 * b.numel);
        if (stage >= 2) {
          const auto buckets_of = [&](int region) {
            std::set<int> out;
            if (region >= 0 && region <= last_region)
              for (const int i : regions[static_cast<size_t>(region)]) out.insert(flat.bucket_of(i));
            return out;
          };
          const auto full = [&](int b) { return 4 * bks[static_cast<size_t>(b)].numel; };
          const bool prefetching = config.parallel.zero_prefetch;
          // At the first op: the first region's full gradients (and at stage 3 its
          // parameters and the next region's).
          for (const int b : buckets_of(last_region)) {
            if (!compressing) first.push_back(full(b));
            if (stage == 3) first.push_back(full(b)), buffers += full(b);
          }
          if (stage == 3 && prefetching && last_region > 0)
            for (const int b : buckets_of(last_region - 1)) first.push_back(full(b)), buffers += full(b);
          // At the last block's start, after the head's backward: the head's buckets in
          // flight (their full gradients and received ranges), the block's gradients and
          // parameters, the previous region prefetched.
          if (last_block >= 0) {
            if (shard.head && !compressing)
              for (const int b : buckets_of(last_region)) block.push_back(full(b)), block.push_back(4 * flat.shard_size(b));
            for (const int b : buckets_of(last_block)) {
              if (!compressing) block.push_back(full(b));
              if (stage == 3) block.push_back(full(b));
            }
            if (stage == 3 && prefetching)
              for (const int b : buckets_of(last_block - 1)) block.push_back(full(b));
          }
        }
      }
      if (powersgd) {  // P, Q and the error buffers
        for (const int64_t n : psgd_errors) hold(4 * n), buffers += 4 * n;
        hold(4 * psgd_p), hold(4 * psgd_q);
        buffers += 4 * (psgd_p + psgd_q);
      }
      if (shard.head) {
        first.push_back(r.activations_peak);
        first.push_back(4 * N * vocab_rows), first.push_back(4 * N * C), first.push_back(4 * vocab_rows * C);
        block.push_back(r.activations_peak - static_cast<int64_t>(head_bytes));
        if (!accumulated) block.push_back(4 * vocab_rows * C);  // the head's weight gradient
      } else {
        block.push_back(r.activations_peak);
      }
      block.push_back(4 * N * 4 * C / tp), block.push_back(4 * 4 * C * C / tp), block.push_back(4 * C);
      int64_t exact = 0, exact_first = 0, exact_block = 0;
      const int64_t lasting = rounded(live, exact);
      const int64_t at_first = rounded(first, exact_first), at_block = rounded(block, exact_block);
      const bool first_wins = at_first >= at_block;
      r.buffers = buffers;
      r.peak = lasting + (first_wins ? at_first : at_block);
      r.slack = r.peak - exact - (first_wins ? exact_first : exact_block);
    }
    plan.ranks.push_back(r);
  }
  return plan;
}

double model_flops_per_token(const Config& config) {
  model::GptConfig gc = gpt_config(config, Device::cpu(), DType::f32);
  gc.allocate = false;
  const parallel::Layout one;
  return model::Gpt(gc, shard_of(config, one, parallel::coord_of(one, 0))).flops_per_token();
}

}  // namespace ternion::train

#include "train/plan.h"

#include "model/gpt.h"
#include "parallel/flat_layout.h"
#include "train/model_shard.h"
#include "train/trainer.h"
#include "train/zero.h"

namespace ternion::train {

Plan plan_model_states(const Config& config, int world_size) {
  validate(config);
  Plan plan;
  plan.layout = resolve_layout(config, world_size);
  const parallel::Layout& l = plan.layout;
  const int stage = config.parallel.zero_stage;
  model::GptConfig gc = gpt_config(config, Device::cpu(), DType::f32);
  gc.allocate = false;
  for (int rank = 0; rank < l.world_size(); ++rank) {
    PlannedRank r;
    r.rank = rank;
    r.coord = parallel::coord_of(l, rank);
    const model::Gpt gpt(gc, shard_of(config, l, r.coord));
    std::vector<int64_t> numels;
    int64_t local = 0;
    for (const model::Parameter& p : gpt.parameters()) {
      numels.push_back(shape_numel(p.local_shape));
      local += numels.back();
    }
    if (stage == 0) {  // every tensor whole; AdamW's two moments per element
      r.params = r.grads = 4 * local;
      r.optim = 8 * local;
    } else {
      const parallel::FlatLayout flat(numels, zero_bucket_elements(config), l.dp, zero_bucket_groups(gpt));
      const int64_t total = flat.total_numel();
      r.params = 4 * (stage == 3 ? total / l.dp : total);
      r.grads = 4 * (stage == 1 ? total : total / l.dp);
      int64_t mine = 0;  // this dp rank's elements of parameters (padding holds no state)
      for (int b = 0; b < static_cast<int>(flat.buckets().size()); ++b)
        for (const parallel::FlatSegment& s : flat.shard_pieces(b, r.coord.dp)) mine += s.numel;
      r.optim = 8 * mine;
    }
    plan.ranks.push_back(r);
  }
  return plan;
}

}  // namespace ternion::train

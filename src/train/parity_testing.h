// Shared by the parity tests (dp, pp, tp against one process): the run they train, and the
// comparison of two runs' per-step figures.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <string>

#include "train/trainer.h"

namespace ternion::train {

// 20 steps of a 4-layer, 32-wide GPT (vocab 64, 2 heads, block 16) on dir/train.h5
// (CorpusEnvironment), global batch 8 in micro-batches of `micro`, dropout 0.1, clipping at
// 0.5, evaluation and a checkpoint every 10 steps, small gradient buckets; in dir/run.
inline Config parity_config(const std::string& dir, const std::string& run, int micro) {
  namespace fs = std::filesystem;
  Config c;
  c.run.dir = (fs::path(dir) / run).string();
  c.run.seed = 17;
  c.model.vocab_size = 64;
  c.model.block_size = 16;
  c.model.n_layer = 4;
  c.model.n_head = 2;
  c.model.n_embd = 32;
  c.model.dropout = 0.1;
  c.data.train = (fs::path(dir) / "train.h5").string();
  c.data.val = c.data.train;
  c.data.shuffle = true;
  c.train.steps = 20;
  c.train.global_batch_size = 8;
  c.train.micro_batch_size = micro;
  c.train.eval_interval = 10;
  c.train.eval_batches = 2;
  c.optim.lr = 3e-3;
  c.optim.warmup_steps = 3;
  c.optim.grad_clip = 0.5;
  c.log.interval = 100;
  c.checkpoint.interval = 10;
  c.parallel.bucket_mb = 0.01;
  return c;
}

// Two runs' per-step figures agree, from step `from` of the reference on: the loss to 1e-5
// relative, the gradient norm to 1e-4 and the validation loss, where evaluated, to 1e-5.

inline void expect_same_losses(const TrainSummary& ref, const TrainSummary& got, size_t from = 0) {
  ASSERT_EQ(ref.steps.size() - from, got.steps.size());
  for (size_t i = 0; i < got.steps.size(); ++i) {
    const StepMetrics& r = ref.steps[from + i];
    const StepMetrics& g = got.steps[i];
    EXPECT_EQ(r.step, g.step);
    EXPECT_NEAR(g.loss, r.loss, 1e-5 * std::abs(r.loss)) << "step " << r.step + 1;
    EXPECT_NEAR(g.grad_norm, r.grad_norm, 1e-4 * std::abs(r.grad_norm) + 1e-7) << "step " << r.step + 1;
    if (r.val_loss >= 0) {
      EXPECT_NEAR(g.val_loss, r.val_loss, 1e-5 * r.val_loss) << "step " << r.step + 1;
    }
  }
}

}  // namespace ternion::train

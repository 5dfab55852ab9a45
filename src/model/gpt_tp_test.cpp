// The tensor-parallel GPT against the whole model under mpirun, the world as the tp group
// (-np 2 and 4): same initial boxes, same loss with dropout on, and every parameter's
// gradient equal to its boxes of the whole model's gradient, with and without sequence
// parallelism and under each activation-checkpointing mode. The vocabulary (37) is a
// multiple of no group size, so the shards are uneven and padded.
#include <gtest/gtest.h>

#include <map>

#include "autograd/autograd.h"
#include "autograd/ops.h"
#include "model/gpt.h"
#include "parallel/mpi_test_main.h"

namespace ternion::model {
namespace {

parallel::Communicator& tp() { return parallel::testing::world(); }

GptConfig config() {
  GptConfig c;
  c.vocab_size = 37;
  c.block_size = 8;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.dropout = 0.1;
  return c;
}

Tensor batch(int64_t B, int64_t T, int salt) {
  std::vector<int32_t> v(static_cast<size_t>(B * T));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>((i * 7 + salt + i / 5) % 37);
  return Tensor::from_vector(v, {B, T});
}

struct Case {
  bool sequence_parallel = false;
  ActivationCheckpointing ac = ActivationCheckpointing::kNone;
};

void check(const Case& k) {
  const int r = tp().rank(), n = tp().size();
  GptConfig c = config();
  c.activation_checkpointing = k.ac;
  Gpt whole(c);
  whole.init(5);
  Gpt shard(c, {.tp_rank = r, .tp_size = n, .sequence_parallel = k.sequence_parallel}, &tp());
  shard.init(5);
  EXPECT_EQ(shard.vocab_shard().rows % 64, n > 1 ? 0 : shard.vocab_shard().rows % 64);

  const int64_t B = 3, T = 8;
  const Tensor idx = batch(B, T, 1), tgt = batch(B, T, 2);
  const DropoutContext d{.key = 99, .step = 4, .sample_offset = 6, .active = true};
  Tensor l1 = whole.loss(idx, tgt, d);
  autograd::backward(l1);
  Tensor l = shard.loss(idx, tgt, d);
  EXPECT_NEAR(l.item(), l1.item(), 1e-5 * l1.item()) << "loss on tp rank " << r;
  autograd::backward(l);

  std::map<std::string, const Parameter*> by_name;
  for (const Parameter& p : whole.parameters()) by_name[p.name] = &p;
  for (Parameter& p : shard.parameters()) {
    Tensor g = autograd::grad(p.tensor);
    ASSERT_TRUE(g.defined()) << p.name;
    g = g.contiguous().clone();
    EXPECT_EQ(p.grad_summed_over_tp, k.sequence_parallel && n > 1 && p.tp_replicated) << p.name;
    if (p.grad_summed_over_tp) tp().all_reduce(g, parallel::ReduceOp::kSum);  // what the step does
    const Parameter& w = *by_name.at(p.name);
    for (size_t b = 0; b < p.boxes.size(); ++b) {
      const int64_t at = p.row_begin(b);
      const auto got = g.slice(0, at, at + p.boxes[b].shape[0]).contiguous().to_vector<float>();
      const auto want = box_view(autograd::grad(w.tensor), p.boxes[b]).contiguous().to_vector<float>();
      const auto init = box_view(w.tensor, p.boxes[b]).contiguous().to_vector<float>();
      const auto mine = p.part(b).contiguous().to_vector<float>();
      ASSERT_EQ(mine, init) << p.name << ": initial values of box " << box_str(p.boxes[b]);
      ASSERT_EQ(got.size(), want.size()) << p.name;
      double scale = 0;
      for (float v : want) scale = std::max(scale, static_cast<double>(std::abs(v)));
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5 * scale + 1e-9) << p.name << " box " << box_str(p.boxes[b]) << " [" << i
                                                           << "] on tp rank " << r;
    }
    if (p.padding_rows > 0) {  // never looked up, masked out of the loss: no gradient
      const int64_t rows = p.tensor.size(0);
      for (float v : g.slice(0, rows - p.padding_rows, rows).contiguous().to_vector<float>()) ASSERT_EQ(v, 0.0f);
    }
  }
}

TEST(TensorParallelGpt, MatchesTheWholeModel) { check({}); }
TEST(TensorParallelGpt, SequenceParallelMatchesTheWholeModel) { check({.sequence_parallel = true}); }
TEST(TensorParallelGpt, SelectiveRecomputationMatches) {
  check({.sequence_parallel = false, .ac = ActivationCheckpointing::kSelective});
  check({.sequence_parallel = true, .ac = ActivationCheckpointing::kSelective});
}
TEST(TensorParallelGpt, FullRecomputationMatches) {
  check({.sequence_parallel = true, .ac = ActivationCheckpointing::kFull});
}

// The bytes of one forward and backward on tp: per layer two all-reduces of B·T·C in the
// forward (after each row-parallel layer) and two in the backward (before each
// column-parallel one), one after the embedding, one in the head's backward, and the loss's
// max (N) and sums (2N); with sequence parallelism each all-reduce is a reduce-scatter and
// an all-gather, the same bytes.
TEST(TensorParallelGpt, BytesOnTpMatchTheCount) {
  const int n = tp().size();
  for (bool sp : {false, true}) {
    GptConfig c = config();
    Gpt shard(c, {.tp_rank = tp().rank(), .tp_size = n, .sequence_parallel = sp}, &tp());
    shard.init(5);
    const int64_t B = 2, T = 8, btc = B * T * c.n_embd * 4, N = B * T;
    const int64_t before = tp().bytes_sent();
    autograd::backward(shard.loss(batch(B, T, 1), batch(B, T, 2)));
    const int64_t all_reduce = 2 * (n - 1) * btc / n;
    const int64_t want = (4 * c.n_layer + 2) * all_reduce + 2 * (n - 1) * (N * 4) / n + 2 * (n - 1) * (2 * N * 4) / n;
    EXPECT_EQ(tp().bytes_sent() - before, want) << (sp ? "sequence parallel" : "tensor parallel");
  }
}

TEST(TensorParallelGpt, RefusesWholeLogitsAndAMissingGroup) {
  if (tp().size() == 1) GTEST_SKIP();
  GptConfig c = config();
  Gpt shard(c, {.tp_rank = tp().rank(), .tp_size = tp().size()}, &tp());
  EXPECT_THROW(shard.head_logits(Tensor::zeros({1, 8, c.n_embd})), Error);
  Gpt alone(c, {.tp_rank = tp().rank(), .tp_size = tp().size()});
  try {
    alone.loss(batch(1, 8, 0), batch(1, 8, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs its tensor-parallel group"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ternion::model

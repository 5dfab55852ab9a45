#include "data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "data/test_util.h"

namespace ternion::data {
namespace {

using testing::expect_error;
using testing::VectorSource;

// tokens[i] = i, so a sample's first input is s*T and sample ids can be read back.
std::shared_ptr<TokenSource> iota_source(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 0);
  return std::make_shared<VectorSource>(std::move(t), 1 << 20);
}

struct Batch {
  std::vector<int32_t> inputs, targets;  // (count, T)
};

Batch fill(BatchSampler& s, int64_t step, int64_t first, int64_t count) {
  Batch b{std::vector<int32_t>(size_t(count * s.block_size())),
          std::vector<int32_t>(size_t(count * s.block_size()))};
  s.fill(step, first, count, b.inputs.data(), b.targets.data());
  return b;
}

// The sample ids of a batch, recovered from the iota tokens.
std::vector<int64_t> ids(const Batch& b, int64_t T) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < b.inputs.size(); i += size_t(T)) out.push_back(b.inputs[i] / T);
  return out;
}

TEST(Sampler, SequentialSamplesAreShiftedWindows) {
  BatchSampler s(iota_source(101), {.block_size = 10, .global_batch = 4});
  EXPECT_EQ(s.num_samples(), 10);  // (101 - 1) / 10
  const Batch b = fill(s, 0, 0, 4);
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t t = 0; t < 10; ++t) {
      EXPECT_EQ(b.inputs[size_t(i * 10 + t)], i * 10 + t);
      EXPECT_EQ(b.targets[size_t(i * 10 + t)], i * 10 + t + 1);
    }
  }
  EXPECT_EQ(ids(fill(s, 1, 0, 4), 10), (std::vector<int64_t>{4, 5, 6, 7}));
}

TEST(Sampler, SequentialWrapsModuloNumSamples) {
  BatchSampler s(iota_source(101), {.block_size = 10, .global_batch = 4});
  EXPECT_EQ(ids(fill(s, 2, 0, 4), 10), (std::vector<int64_t>{8, 9, 0, 1}));
  EXPECT_EQ(ids(fill(s, 3, 0, 4), 10), (std::vector<int64_t>{2, 3, 4, 5}));
  // The last sample reads the last token: tokens[90, 101).
  EXPECT_EQ(fill(s, 2, 1, 1).targets.back(), 100);
  // A global batch larger than the data wraps several times within one step.
  BatchSampler big(iota_source(31), {.block_size = 10, .global_batch = 7});
  EXPECT_EQ(ids(fill(big, 1, 0, 7), 10), (std::vector<int64_t>{1, 2, 0, 1, 2, 0, 1}));
}

TEST(Sampler, EpochPermutationIsDeterministicPermutation) {
  const auto p = epoch_permutation(1000, 1234, 0);
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected);
  EXPECT_NE(p, expected);
  EXPECT_EQ(p, epoch_permutation(1000, 1234, 0));
  EXPECT_NE(p, epoch_permutation(1000, 1235, 0));
  EXPECT_NE(p, epoch_permutation(1000, 1234, 1));
  // Pinned values: a change here silently changes every resumed run's data order.
  EXPECT_EQ(epoch_permutation(8, 42, 3), (std::vector<int64_t>{1, 6, 4, 2, 7, 0, 5, 3}));
}

TEST(Sampler, ShuffleFollowsTheEpochPermutation) {
  // G == num_samples: step k is exactly epoch k.
  BatchSampler s(iota_source(201), {.block_size = 10, .global_batch = 20, .shuffle = true,
                                    .seed = 7});
  for (int64_t step = 0; step < 3; ++step)
    EXPECT_EQ(ids(fill(s, step, 0, 20), 10), epoch_permutation(20, 7, step));
  // G = 6 straddles epochs: counters 18..23 are epoch 0's [18, 20) then epoch 1's [0, 4).
  BatchSampler t(iota_source(201), {.block_size = 10, .global_batch = 6, .shuffle = true,
                                    .seed = 7});
  const auto e0 = epoch_permutation(20, 7, 0), e1 = epoch_permutation(20, 7, 1);
  EXPECT_EQ(ids(fill(t, 3, 0, 6), 10),
            (std::vector<int64_t>{e0[18], e0[19], e1[0], e1[1], e1[2], e1[3]}));
}

TEST(Sampler, DataParallelHalvesMakeTheGlobalBatch) {
  for (bool shuffle : {false, true}) {
    const SamplerOptions opt{.block_size = 8, .global_batch = 6, .shuffle = shuffle, .seed = 3};
    auto src = iota_source(200);
    BatchSampler full(src, opt), rank0(src, opt), rank1(src, opt);
    for (int64_t step = 0; step < 5; ++step) {
      const Batch all = fill(full, step, 0, 6);
      Batch a = fill(rank0, step, 0, 3), b = fill(rank1, step, 3, 3);
      a.inputs.insert(a.inputs.end(), b.inputs.begin(), b.inputs.end());
      a.targets.insert(a.targets.end(), b.targets.begin(), b.targets.end());
      EXPECT_EQ(a.inputs, all.inputs);
      EXPECT_EQ(a.targets, all.targets);
    }
  }
}

TEST(Sampler, StateRestoreReproducesTheNextBatches) {
  const SamplerOptions opt{.block_size = 5, .global_batch = 4, .shuffle = true, .seed = 11};
  auto src = iota_source(51);  // 10 samples: epochs end mid-batch
  BatchSampler a(src, opt);
  std::vector<int32_t> in(20), tg(20);
  for (int i = 0; i < 3; ++i) a.next(0, 4, in.data(), tg.data());
  const SamplerState saved = a.get_state();
  EXPECT_EQ(saved, (SamplerState{3, 12}));
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 4; ++i) {
    a.next(0, 4, in.data(), tg.data());
    expected.push_back(in);
  }
  BatchSampler b(src, opt);
  b.set_state(saved);
  for (int i = 0; i < 4; ++i) {
    b.next(0, 4, in.data(), tg.data());
    EXPECT_EQ(in, expected[size_t(i)]) << "step " << saved.step + i;
  }
  EXPECT_EQ(b.get_state(), a.get_state());

  // Resuming with a different global batch continues from the saved sample counter.
  BatchSampler c(src, {.block_size = 5, .global_batch = 2, .shuffle = true, .seed = 11});
  c.set_state(saved);
  EXPECT_EQ(ids(fill(c, 3, 0, 2), 5), ids(fill(a, 3, 0, 2), 5));
  EXPECT_EQ(ids(fill(c, 4, 0, 2), 5), ids(fill(a, 3, 2, 2), 5));
  c.set_state({5, 2});  // step 3 would start at counter 2 - 2*2 < 0
  expect_error([&] { fill(c, 3, 0, 2); }, {"step 3 precedes", "{step 5, sample 2}"});
}

TEST(Sampler, RejectsDataShorterThanABlock) {
  expect_error([] { BatchSampler(iota_source(10), {.block_size = 10, .global_batch = 1}); },
               {"block_size 10", "11 tokens", "only 10 tokens", "memory"});
  BatchSampler ok(iota_source(11), {.block_size = 10, .global_batch = 1});
  EXPECT_EQ(ok.num_samples(), 1);
  expect_error([] { BatchSampler(iota_source(11), {.block_size = 0, .global_batch = 1}); },
               {"block_size 0"});
  expect_error([] { BatchSampler(iota_source(11), {.block_size = 4, .global_batch = 0}); },
               {"global_batch 0"});
}

TEST(Sampler, RejectsTokensOutsideVocab) {
  std::vector<int32_t> t(41, 5);
  t[23] = 300;
  auto src = std::make_shared<VectorSource>(t, 256);
  BatchSampler s(src, {.block_size = 10, .global_batch = 4});
  EXPECT_NO_THROW(fill(s, 0, 0, 2));  // samples 0, 1 cover tokens [0, 21)
  expect_error([&] { fill(s, 0, 2, 1); }, {"token id 300", "position 23", "vocab_size 256"});
  // An explicit vocab_size (the model's) overrides the source's.
  BatchSampler narrow(src, {.block_size = 10, .global_batch = 4, .vocab_size = 5});
  expect_error([&] { fill(narrow, 0, 0, 1); }, {"token id 5", "position 0", "vocab_size 5"});
}

TEST(Sampler, RejectsRangesOutsideTheGlobalBatch) {
  BatchSampler s(iota_source(101), {.block_size = 10, .global_batch = 4});
  expect_error([&] { fill(s, 0, 3, 2); }, {"[3, 5)", "global batch of 4"});
  expect_error([&] { fill(s, 0, -1, 1); }, {"[-1, 0)"});
}

}  // namespace
}  // namespace ternion::data

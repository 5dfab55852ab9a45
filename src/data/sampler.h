// BatchSampler: which tokens make up each step's global batch, and how a data-parallel rank
// reads its share of it.
//
// Sample s is tokens[s*T, s*T + T + 1): inputs are its first T tokens, targets its last T
// (inputs shifted by one). num_samples = (size - 1) / T, so samples overlap by one token.
// Samples are consumed through a global counter c (one per sample, across steps); c maps to
//   epoch = c / num_samples, pos = c % num_samples,
//   sample = pos                      without shuffle,
//   sample = perm(seed, epoch)[pos]   with shuffle,
// where perm is a Fisher-Yates permutation driven by std::mt19937_64 (fully specified by
// the standard) seeded with philox4x32(stream_key(seed, "data/shuffle"), 0, epoch) from
// core/rng.h: identical on every platform and rank. Changing any of this reorders resumed runs.
// Step k of the global batch G covers counters state.sample + (k - state.step)*G + [0, G).
//
// Not thread-safe (it caches one epoch's permutation and reads through the source).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "data/token_file.h"

namespace ternion::data {

struct SamplerOptions {
  int64_t block_size = 0;    // T: tokens per sample's inputs
  int64_t global_batch = 0;  // G: samples per step, summed over data-parallel ranks
  bool shuffle = false;
  uint64_t seed = 0;
  int64_t vocab_size = 0;    // token ids must be < this; 0 means source->vocab_size()
};

// The position to resume from: the next step, and the global sample counter at its start.
// With a constant global batch, sample == step * G.
struct SamplerState {
  int64_t step = 0;
  int64_t sample = 0;
  bool operator==(const SamplerState&) const = default;
};

class BatchSampler {
 public:
  // Throws ternion::Error when T <= 0, G <= 0, vocab_size < 0, or the source holds fewer
  // than T + 1 tokens (naming both sizes and the source).
  BatchSampler(std::shared_ptr<TokenSource> source, const SamplerOptions& options);

  int64_t num_samples() const { return num_samples_; }
  int64_t block_size() const { return opt_.block_size; }
  int64_t global_batch() const { return opt_.global_batch; }
  int64_t vocab_size() const { return vocab_size_; }

  // Sample index for global counter `counter` (see the file comment). REQUIRES: counter >= 0.
  int64_t sample_at(int64_t counter);

  // Fills samples [first, first + count) of step `step`'s global batch:
  //   inputs  (count, T) row-major, targets (count, T) row-major.
  // A rank of a D-way data-parallel group typically passes first = rank * G/D, count = G/D.
  // Does not change the state. REQUIRES: 0 <= first, 0 <= count, first + count <= G, and
  // the step's first counter >= 0. Throws ternion::Error when a token is outside
  // [0, vocab_size), naming the id, its position in the source and the vocab size.
  void fill(int64_t step, int64_t first, int64_t count, int32_t* inputs, int32_t* targets);

  // fill() for the current step, then advances to the next step.
  void next(int64_t first, int64_t count, int32_t* inputs, int32_t* targets);

  // The next step to be read and its counter; a checkpoint saves this.
  SamplerState get_state() const;
  // Resumes at `state` (from get_state(), possibly saved with another global batch).
  // REQUIRES: state.step >= 0 and state.sample >= 0.
  void set_state(const SamplerState& state);

 private:
  const std::vector<int64_t>& permutation(int64_t epoch);

  std::shared_ptr<TokenSource> source_;
  SamplerOptions opt_;
  int64_t vocab_size_ = 0;
  int64_t num_samples_ = 0;
  SamplerState base_;      // counter `base_.sample` is the start of step `base_.step`
  int64_t step_ = 0;       // next step for next()
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;  // (num_samples): cached permutation of perm_epoch_
  std::vector<int32_t> buf_;   // (T + 1): one sample's tokens
};

// The permutation of [0, n) used for (seed, epoch); exposed for tests and tools.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace ternion::data

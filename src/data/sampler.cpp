#include "data/sampler.h"

#include <numeric>
#include <random>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace ternion::data {
namespace {

// Uniform integer in [0, n) from a 64-bit engine by rejection: values below 2^64 mod n are
// redrawn so that every residue is equally likely. REQUIRES: n > 0.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // == 2^64 mod n
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  TN_CHECK(n >= 0 && epoch >= 0, "epoch_permutation", "n ", n, " and epoch ", epoch,
           " must be >= 0");
  const PhiloxOut r = philox4x32(stream_key(seed, "data/shuffle"), 0, static_cast<uint64_t>(epoch));
  std::mt19937_64 rng((static_cast<uint64_t>(r.v[1]) << 32) | r.v[0]);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(i) + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

BatchSampler::BatchSampler(std::shared_ptr<TokenSource> source, const SamplerOptions& options)
    : source_(std::move(source)), opt_(options) {
  constexpr std::string_view op = "BatchSampler";
  TN_CHECK(source_ != nullptr, op, "no token source");
  const int64_t T = opt_.block_size, G = opt_.global_batch;
  TN_CHECK(T > 0, op, "block_size ", T, " must be > 0");
  TN_CHECK(G > 0, op, "global_batch ", G, " must be > 0");
  TN_CHECK(opt_.vocab_size >= 0, op, "vocab_size ", opt_.vocab_size, " must be >= 0");
  vocab_size_ = opt_.vocab_size > 0 ? opt_.vocab_size : source_->vocab_size();
  const int64_t n = source_->size();
  TN_CHECK(T < n, op, "block_size ", T, " needs ", T + 1, " tokens per sample but the data (",
           source_->name(), ") has only ", n, " tokens");
  num_samples_ = (n - 1) / T;
  buf_.resize(static_cast<size_t>(T + 1));
}

const std::vector<int64_t>& BatchSampler::permutation(int64_t epoch) {
  if (epoch != perm_epoch_) {
    perm_ = epoch_permutation(num_samples_, opt_.seed, epoch);
    perm_epoch_ = epoch;
  }
  return perm_;
}

int64_t BatchSampler::sample_at(int64_t counter) {
  TN_CHECK(counter >= 0, "BatchSampler::sample_at", "counter ", counter, " must be >= 0");
  const int64_t pos = counter % num_samples_;
  if (!opt_.shuffle) return pos;
  return permutation(counter / num_samples_)[static_cast<size_t>(pos)];
}

void BatchSampler::fill(int64_t step, int64_t first, int64_t count, int32_t* inputs,
                        int32_t* targets) {
  constexpr std::string_view op = "BatchSampler::fill";
  const int64_t T = opt_.block_size, G = opt_.global_batch;
  TN_CHECK(first >= 0 && count >= 0 && first + count <= G, op, "samples [", first, ", ",
           first + count, ") outside the global batch of ", G);
  const int64_t start = base_.sample + (step - base_.step) * G;
  TN_CHECK(start >= 0, op, "step ", step, " precedes the state {step ", base_.step, ", sample ",
           base_.sample, "}");
  for (int64_t i = 0; i < count; ++i) {
    const int64_t s = sample_at(start + first + i);
    source_->read(s * T, T + 1, buf_.data());
    for (int64_t t = 0; t <= T; ++t) {
      const int32_t id = buf_[static_cast<size_t>(t)];
      if (id < 0 || id >= vocab_size_) {
        fail(op, str_cat("token id ", id, " at position ", s * T + t, " (",
                              source_->where(s * T + t), ") is outside vocab_size ",
                              vocab_size_));
      }
    }
    std::copy(buf_.begin(), buf_.end() - 1, inputs + i * T);
    std::copy(buf_.begin() + 1, buf_.end(), targets + i * T);
  }
}

void BatchSampler::next(int64_t first, int64_t count, int32_t* inputs, int32_t* targets) {
  fill(step_, first, count, inputs, targets);
  ++step_;
}

SamplerState BatchSampler::get_state() const {
  return {step_, base_.sample + (step_ - base_.step) * opt_.global_batch};
}

void BatchSampler::set_state(const SamplerState& state) {
  TN_CHECK(state.step >= 0 && state.sample >= 0, "BatchSampler::set_state", "state {step ",
           state.step, ", sample ", state.sample, "} must be non-negative");
  base_ = state;
  step_ = state.step;
}

}  // namespace ternion::data

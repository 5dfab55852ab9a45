// `ternion sample --checkpoint model.h5 --prompt TEXT`: greedy or top-k generation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "checkpoint/weights_file.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/tokenizer.h"
#include "model/gpt.h"

namespace ternion::cli {
namespace {

// NaN or inf in the weights (a diverged run) would make every logit NaN and the text
// garbage without a word; name the first tensor that has any.
void check_finite(const std::string& path, const std::vector<checkpoint::NamedTensor>& named) {
  for (const auto& nt : named) {
    const std::vector<float> v = nt.tensor.to_vector<float>();
    const auto bad = std::find_if(v.begin(), v.end(), [](float x) { return !std::isfinite(x); });
    if (bad == v.end()) continue;
    const auto count = std::count_if(bad, v.end(), [](float x) { return !std::isfinite(x); });
    fail("sample", str_cat("'", path, "': tensor '", nt.name, "' is not finite: ", count, " of its ", v.size(),
                           " values are NaN or inf (the first, element ", bad - v.begin(), ", is ", *bad,
                           "); the run that wrote these weights diverged"));
  }
}

}  // namespace

int run_sample(int argc, char** argv) {
  Args args(argc, argv, {"checkpoint", "prompt", "tokens", "top-k", "temperature", "seed"});
  const std::string path = args.required("checkpoint");
  const int64_t n_new = args.integer("tokens", 200);
  const int64_t top_k = args.integer("top-k", 0);  // 0 = greedy
  const double temperature = args.number("temperature", 1.0);
  const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 1));
  TN_CHECK(n_new > 0, "sample", "--tokens must be positive, got ", n_new);
  TN_CHECK(top_k >= 0, "sample", "--top-k must be >= 0 (0 = greedy), got ", top_k);
  TN_CHECK(temperature > 0, "sample", "--temperature must be positive, got ", args.get("temperature"));

  auto attrs = checkpoint::read_weight_attributes(path);
  for (const char* k : {"vocab_size", "block_size", "n_layer", "n_head", "n_embd"})
    TN_CHECK(attrs.count(k), "sample", "'", path, "' lacks the model attribute '", k, "'");
  model::GptConfig gc;
  gc.vocab_size = attrs["vocab_size"];
  gc.block_size = attrs["block_size"];
  gc.n_layer = attrs["n_layer"];
  gc.n_head = attrs["n_head"];
  gc.n_embd = attrs["n_embd"];
  model::Gpt gpt(gc);
  std::vector<checkpoint::NamedTensor> named;
  for (auto& p : gpt.parameters()) named.push_back({p.name, p.tensor});
  checkpoint::read_weights(path, named);
  check_finite(path, named);

  data::ByteTokenizer tok;
  std::vector<int32_t> ids = tok.encode(args.get("prompt", "\n"));
  if (ids.empty()) ids.push_back('\n');
  autograd::NoGrad no_grad;
  std::fputs(tok.decode(ids).c_str(), stdout);
  for (int64_t i = 0; i < n_new; ++i) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - gc.block_size);
    std::vector<int32_t> ctx(ids.begin() + start, ids.end());
    const int64_t T = static_cast<int64_t>(ctx.size());
    Tensor logits = gpt.logits(Tensor::from_vector(ctx, {1, T}));
    std::vector<float> last = logits.select(1, T - 1).to_vector<float>();
    int32_t next = 0;
    if (top_k <= 0) {
      next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    } else {
      std::vector<int32_t> order(last.size());
      std::iota(order.begin(), order.end(), 0);
      const int64_t k = std::min<int64_t>(top_k, static_cast<int64_t>(order.size()));
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int32_t a, int32_t b) { return last[a] > last[b]; });
      std::vector<double> w(static_cast<size_t>(k));
      double total = 0;
      for (int64_t j = 0; j < k; ++j) total += w[j] = std::exp((last[order[j]] - last[order[0]]) / temperature);
      double u = uniform_at(seed, 0, static_cast<uint64_t>(i)) * total;
      next = order[k - 1];
      for (int64_t j = 0; j < k; ++j) {
        if ((u -= w[j]) <= 0) {
          next = order[j];
          break;
        }
      }
    }
    if (next >= 256) next = '?';
    ids.push_back(next);
    const int32_t one[1] = {next};
    std::fputs(tok.decode(one).c_str(), stdout);
    std::fflush(stdout);
  }
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace ternion::cli

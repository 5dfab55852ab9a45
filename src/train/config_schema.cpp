#include "train/config_schema.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <type_traits>
#include <utility>

namespace ternion::train::schema {

// Strings are always quoted so that "auto", "true", "~" or "" read back as strings.
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

namespace {

// ---- Scalar codecs: YAML node <-> value. `type` names the type in docs and errors.

template <typename T>
struct Codec {
  std::string type;
  std::function<bool(const YAML::Node&, T&)> decode;  // false: the node is not a T
  std::function<std::string(const T&)> encode;        // YAML text that decodes to the same T
};

// Decimal only: yaml-cpp's own conversion reads "010" as octal.
template <typename Int>
Codec<Int> int_codec(std::string type) {
  return {std::move(type),
          [](const YAML::Node& n, Int& out) {
            if (!n.IsScalar()) return false;
            std::string_view s = n.Scalar();
            if (!s.empty() && s[0] == '+') s.remove_prefix(1);
            Int v{};
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return false;
            out = v;
            return true;
          },
          [](const Int& v) { return std::to_string(v); }};
}

Codec<double> float_codec() {
  return {"float",
          [](const YAML::Node& n, double& out) {
            if (!n.IsScalar()) return false;
            std::string_view s = n.Scalar();
            if (!s.empty() && s[0] == '+') s.remove_prefix(1);
            double v = 0;
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v))
              return false;
            out = v;
            return true;
          },
          [](const double& v) {
            if (std::isnan(v)) return std::string(".nan");
            if (std::isinf(v)) return std::string(v > 0 ? ".inf" : "-.inf");
            char buf[32];
            auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that round-trips
            std::string s(buf, r.ptr);
            size_t e = s.find('e');
            if (e == std::string::npos && s.find('.') == std::string::npos) return s + ".0";
            if (e != std::string::npos && s[e + 2] == '0') s.erase(e + 2, 1);  // 6e-04 -> 6e-4
            return s;
          }};
}

Codec<bool> bool_codec() {
  return {"bool",
          [](const YAML::Node& n, bool& out) { return YAML::convert<bool>::decode(n, out); },
          [](const bool& v) { return std::string(v ? "true" : "false"); }};
}

Codec<std::string> string_codec() {
  return {"string",
          [](const YAML::Node& n, std::string& out) {
            if (n.IsNull()) {  // "val:" with nothing after it
              out.clear();
              return true;
            }
            if (!n.IsScalar()) return false;
            out = n.Scalar();
            return true;
          },
          quote};
}

// An int that may also be written "auto", stored as 0.
Codec<int> auto_int_codec() {
  Codec<int> c = int_codec<int>("int or auto");
  c.decode = [plain = c.decode](const YAML::Node& n, int& out) {
    if (n.IsScalar() && n.Scalar() == "auto") {
      out = 0;
      return true;
    }
    return plain(n, out);
  };
  c.encode = [](const int& v) { return v == 0 ? std::string("auto") : std::to_string(v); };
  return c;
}

// A flow list of ints, "[3, 5, 4]"; null or [] is the empty list.
Codec<std::vector<int>> int_list_codec() {
  return {"list of int",
          [item = int_codec<int>("int")](const YAML::Node& n, std::vector<int>& out) {
            if (n.IsNull()) {
              out.clear();
              return true;
            }
            if (!n.IsSequence()) return false;
            std::vector<int> v;
            for (const auto& e : n) {
              int x = 0;
              if (!item.decode(e, x)) return false;
              v.push_back(x);
            }
            out = std::move(v);
            return true;
          },
          [](const std::vector<int>& v) {
            std::string s = "[";
            for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
            return s + "]";
          }};
}

template <typename T>
Codec<T> default_codec() {
  if constexpr (std::is_same_v<T, int>) return int_codec<int>("int");
  else if constexpr (std::is_same_v<T, int64_t>) return int_codec<int64_t>("int64");
  else if constexpr (std::is_same_v<T, double>) return float_codec();
  else if constexpr (std::is_same_v<T, bool>) return bool_codec();
  else {
    static_assert(std::is_same_v<T, std::string>, "no codec for this member type");
    return string_codec();
  }
}

// ---- Rules on one value. `what` reads after "must be" in errors and in the docs.

template <typename T>
struct Rule {
  std::string what;
  std::function<bool(const T&)> ok;
};

// Converts to Rule<T> for whatever T the key has, so the table needs no template arguments.
template <typename Pred>
struct AnyRule {
  std::string what;
  Pred ok;
  template <typename T>
  operator Rule<T>() const { return {what, ok}; }
};
template <typename Pred>
AnyRule(std::string, Pred) -> AnyRule<Pred>;

auto positive() { return AnyRule{"> 0", [](const auto& v) { return v > 0; }}; }
auto non_negative() { return AnyRule{">= 0", [](const auto& v) { return v >= 0; }}; }
auto unit_interval() { return AnyRule{"in [0, 1)", [](double v) { return v >= 0 && v < 1; }}; }
auto non_empty() { return AnyRule{"non-empty", [](const std::string& s) { return !s.empty(); }}; }
auto all_positive() {
  return AnyRule{"a list of ints > 0", [](const std::vector<int>& v) {
                   for (int x : v)
                     if (x <= 0) return false;
                   return true;
                 }};
}

auto one_of(std::vector<std::string> choices) {
  return AnyRule{"one of " + join(choices, ", "), [choices](const std::string& s) {
                   for (const auto& c : choices)
                     if (s == c) return true;
                   return false;
                 }};
}

// "tp-dp-pp" and its permutations.
auto parallel_order() {
  return AnyRule{"tp, dp and pp in some order, joined by '-'", [](const std::string& s) {
                   for (const char* o : {"tp-dp-pp", "tp-pp-dp", "dp-tp-pp", "dp-pp-tp", "pp-tp-dp",
                                         "pp-dp-tp"})
                     if (s == o) return true;
                   return false;
                 }};
}

// ---- Typed key builders.

template <typename T, typename Get>
Key make_key(std::string name, Get get, std::string doc, Rule<T> rule, Codec<T> codec) {
  Key k{std::move(name), codec.type, rule.what, std::move(doc), {}, {}, {}};
  k.decode = [get, decode = codec.decode](const YAML::Node& n, Config& c) {
    T v{};
    if (!decode(n, v)) return false;
    get(c) = std::move(v);
    return true;
  };
  k.encode = [get, encode = codec.encode](const Config& c) { return encode(get(c)); };
  k.ok = [get, ok = rule.ok](const Config& c) { return !ok || ok(get(c)); };
  return k;
}

// A key inside a section: key("optim.lr", &Config::optim, &OptimConfig::lr, doc, rule).
template <typename S, typename T>
Key key(std::string name, S Config::*section, T S::*member, std::string doc,
        std::type_identity_t<Rule<T>> rule = {},
        std::type_identity_t<Codec<T>> codec = default_codec<T>()) {
  auto get = [section, member](auto& c) -> auto& { return c.*section.*member; };
  return make_key<T>(std::move(name), get, std::move(doc), std::move(rule), std::move(codec));
}

// A top-level key: key("precision", &Config::precision, doc, rule).
template <typename T>
Key key(std::string name, T Config::*member, std::string doc,
        std::type_identity_t<Rule<T>> rule = {},
        std::type_identity_t<Codec<T>> codec = default_codec<T>()) {
  auto get = [member](auto& c) -> auto& { return c.*member; };
  return make_key<T>(std::move(name), get, std::move(doc), std::move(rule), std::move(codec));
}

}  // namespace

// ---- The key table. A new key is one line here plus its member in config.h.

// TN_KEY(optim, lr, doc[, rule[, codec]]): the key is named after the member, so they agree.
#define TN_KEY(section, field, ...) \
  key(#section "." #field, &Config::section, &decltype(Config::section)::field, __VA_ARGS__)

// A key of parallel.powersgd: TN_PSGD_KEY(rank, doc, rule).
template <typename T>
Key psgd_key_impl(const char* leaf, T PowerSgdConfig::*member, std::string doc, std::type_identity_t<Rule<T>> rule = {}) {
  auto get = [member](auto& c) -> auto& { return c.parallel.powersgd.*member; };
  std::string name = "parallel.powersgd.";
  name += leaf;
  return make_key<T>(std::move(name), get, std::move(doc), std::move(rule), default_codec<T>());
}
#define TN_PSGD_KEY(field, ...) psgd_key_impl(#field, &PowerSgdConfig::field, __VA_ARGS__)

const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      TN_KEY(run, dir, "Run directory: checkpoints and logs go here.", non_empty()),
      TN_KEY(run, seed, "Seed for weight init, dropout and data order."),

      TN_KEY(model, vocab_size, "Vocabulary size V.", positive()),
      TN_KEY(model, block_size, "Maximum sequence length T.", positive()),
      TN_KEY(model, n_layer, "Number of transformer blocks L.", positive()),
      TN_KEY(model, n_head, "Attention heads H per block.", positive()),
      TN_KEY(model, n_embd, "Embedding width C; a multiple of n_head.", positive()),
      TN_KEY(model, dropout,
             "Dropout probability on the embedding sum and on each block's attention and MLP outputs (not on "
             "the attention probabilities, which nanoGPT also drops); 0 disables dropout. A mask element "
             "depends only on (run.seed, step, layer, site, global sample, position, channel): the same for "
             "every layout and micro-batch size.",
             unit_interval()),
      TN_KEY(model, init_from, "Checkpoint to initialise the weights from; empty = random init."),

      TN_KEY(data, train, "Training data file.", non_empty()),
      TN_KEY(data, val, "Validation data file; empty = no validation set."),
      TN_KEY(data, shuffle, "Shuffle the order of training sequences."),

      TN_KEY(train, steps, "Number of optimizer steps M: the console counts them step 1/M to step M/M.",
             positive()),
      TN_KEY(train, global_batch_size,
             "Sequences per optimizer step, summed over data-parallel ranks.", positive()),
      TN_KEY(train, micro_batch_size,
             "Sequences per forward/backward pass on one rank; gradients accumulate over "
             "global_batch_size / (micro_batch_size * dp) micro-batches.",
             positive()),
      TN_KEY(train, eval_interval,
             "Steps between evaluations on data.val: after each step whose console number is a multiple of "
             "it, and after the last step; 0 = only after the last step. Nothing is evaluated when data.val is "
             "empty.",
             non_negative()),
      TN_KEY(train, eval_batches,
             "Validation batches of train.global_batch_size sequences per evaluation, split over the "
             "data-parallel ranks and micro-batches like a training batch (the loss does not depend on the "
             "layout).",
             positive()),
      TN_KEY(train, activation_checkpointing,
             "What each layer keeps for its backward; the rest is recomputed from it, and the losses and "
             "gradients are the same bits in every mode (dropout masks are recomputed in every mode, never "
             "kept). Bytes per layer for a micro-batch of B sequences of T tokens in f32 (16-bit compute: 2 "
             "bytes for each C term, the statistics stay f32): none keeps every tensor its ops save, "
             "4·B·T·(17C + 4 + H): the input, both LayerNorm outputs and their statistics (the 4), q, k, v, the "
             "attention output and its [B,T,C] copy, the row log-sum-exp (the H), the residual, and the MLP's "
             "[B,T,4C] matmul and GELU outputs. selective keeps 4·B·T·(10C + 4 + H): the LayerNorm outputs, the "
             "attention output's copy and the GELU output are recomputed (element-wise, cheap) right before "
             "the backward of the matmul that reads each; no matmul is recomputed. full keeps the layer's "
             "input, 4·B·T·C, and recomputes the whole layer (a second forward) in its backward, which holds "
             "that layer's none figure meanwhile. Try selective first (the most memory for the least time), "
             "full when that is not enough.",
             one_of({"none", "selective", "full"})),
      TN_KEY(train, checkpoint_layers,
             "With activation_checkpointing selective or full: how many of each pipeline stage's layers, from "
             "its first, do so; the others keep everything. 0, or more than a stage holds: all of them.",
             non_negative()),

      TN_KEY(optim, lr, "Peak learning rate, reached at the end of warmup.", non_negative()),
      TN_KEY(optim, min_lr, "Learning rate at the last step of the cosine schedule.",
             non_negative()),
      TN_KEY(optim, warmup_steps, "Steps of linear warmup from 0 to lr.", non_negative()),
      TN_KEY(optim, schedule,
             "Learning rate after warmup: cosine decays from lr to min_lr; constant keeps lr.",
             one_of({"cosine", "constant"})),
      TN_KEY(optim, weight_decay, "AdamW decoupled weight decay.", non_negative()),
      TN_KEY(optim, beta1, "AdamW decay rate of the first moment.", unit_interval()),
      TN_KEY(optim, beta2, "AdamW decay rate of the second moment.", unit_interval()),
      TN_KEY(optim, eps, "AdamW denominator epsilon.", positive()),
      TN_KEY(optim, grad_clip, "Maximum global gradient norm; 0 disables clipping.",
             non_negative()),

      TN_KEY(log, interval,
             "Steps between log lines (console and metrics.jsonl): each step whose console number is a "
             "multiple of it, plus the first step after a start or resume, the last step, and every step that "
             "evaluated, saved or committed a checkpoint, or skipped its update.",
             positive()),

      TN_KEY(parallel, dp, "Data-parallel degree; auto (stored as 0) = world_size / (tp * pp).",
             non_negative(), auto_int_codec()),
      TN_KEY(parallel, tp,
             "Tensor-parallel degree: each layer's attention heads, MLP columns and vocabulary rows are split "
             "over tp ranks (Megatron-LM style), which all-reduce B·T·C activations twice per layer in the "
             "forward and twice in the backward. Keep a tp group inside one node (order tp-dp-pp, the "
             "default, makes adjacent ranks a tp group). model.n_head must be divisible by it.",
             positive()),
      TN_KEY(parallel, pp, "Pipeline-parallel degree.", positive()),
      TN_KEY(parallel, order,
             "Layout of the parallel dimensions over ranks, innermost (adjacent ranks) first.",
             parallel_order()),
      TN_KEY(parallel, bucket_mb, "Size of a gradient all-reduce bucket, MiB.", positive()),
      TN_KEY(parallel, pp_schedule,
             "Pipeline schedule when parallel.pp > 1: gpipe (every forward, then every backward: a stage "
             "holds the activations of all m micro-batches of its step) or 1f1b (one forward, one backward "
             "in the steady state: stage s holds at most pp - s). Both idle (pp-1)/(m+pp-1) of a step. "
             "interleaved (Megatron-LM's interleaved 1F1B): each stage holds parallel.virtual_stages "
             "non-contiguous chunks of layers and micro-batches pass through the pipeline v times, so the "
             "bubble falls to (pp-1)/(v·m+pp-1) for v times the point-to-point messages; it needs m "
             "(global_batch_size / (micro_batch_size · dp)) divisible by pp and model.n_layer divisible by "
             "pp · virtual_stages.",
             one_of({"gpipe", "1f1b", "interleaved"})),
      TN_KEY(parallel, virtual_stages,
             "With parallel.pp_schedule: interleaved, the model chunks each pipeline stage holds (v): stage "
             "s runs layers s·L/(pp·v) … and every pp·L/(pp·v) layers after them. 1 for gpipe and 1f1b.",
             positive()),
      TN_KEY(parallel, sequence_parallel,
             "With parallel.tp > 1: the LayerNorm, dropout and residual regions hold only each tp rank's "
             "B·T/tp tokens (activation memory there / tp), and the all-reduces become reduce-scatter and "
             "all-gather pairs (the same bytes). model.block_size must be divisible by parallel.tp. No "
             "effect at tp = 1."),
      TN_KEY(parallel, zero_stage,
             "ZeRO over the data-parallel group (Rajbhandari et al. 2020). 0: every dp rank holds the whole "
             "model shard, its gradients and AdamW state (4 + 4 + 8 bytes per parameter). 1: AdamW state "
             "split over dp (4 + 4 + 8/dp); gradients are reduce-scattered and the updated parameters "
             "all-gathered, the same bytes as one all-reduce. 2: gradients split too (4 + 12/dp), reduced "
             "bucket by bucket as backward produces them, so each micro-batch of an accumulating step adds "
             "a reduce-scatter. 3: parameters split too (16/dp): each region (the embeddings, a block, the "
             "head) is all-gathered before its forward and again before its backward, 1.5 times stage 0's "
             "traffic, with the next region's gather prefetched. Choose the lowest stage that fits.",
             AnyRule{"0, 1, 2 or 3", [](int v) { return v >= 0 && v <= 3; }}),
      TN_KEY(parallel, zero_prefetch,
             "With parallel.zero_stage: 3, start the all-gather of the next region's parameters (the next "
             "block in the forward, the previous one in the backward) while this region computes, so the "
             "gather overlaps compute; false gathers each region only when it starts (less memory: one "
             "region's parameters gathered at a time instead of two)."),
      TN_PSGD_KEY(rank,
                    "PowerSGD gradient compression on the data-parallel axis (Vogels et al. 2019; PyTorch's "
                    "powerSGD_hook): each gradient matrix of n x m is sent as two factors of rank r, (n + m)·r "
                    "values instead of n·m. 0 = off. At GPT-2 small's shapes rank 1 sends 1/387 of the gradient's bytes, rank 4 "
                    "1/135, rank 8 1/72 (docs/performance.md); higher ranks track the uncompressed loss more "
                    "closely: start at 4. At r >= min(n, "
                    "m) the product is exact. With ZeRO-2/3 the step's gradient is held whole while compressing (docs/launching.md).",
                    non_negative()),
      TN_PSGD_KEY(start_step,
                        "Steps (counted from 0) trained with the plain all-reduce before compression starts, as "
                        "PyTorch's start_powerSGD_iter: the first steps' gradients change fast.",
                        non_negative()),
      TN_PSGD_KEY(min_compression_rate,
                       "A matrix is compressed only when (n·m) / ((n + m)·r) reaches this; the others (and every "
                       "vector: biases, LayerNorms) are all-reduced exactly, in one buffer.",
                       non_negative()),
      TN_PSGD_KEY(warm_start, "Reuse each matrix's Q from the previous step (else draw a new one each step)."),
      TN_PSGD_KEY(error_feedback,
                     "Add what compression left out of the last step's gradient (per rank) to this step's before "
                     "compressing."),
      TN_PSGD_KEY(orthogonalization_epsilon,
                       "Added to each column's norm in the Gram-Schmidt orthonormalisation of P (0: none; a small "
                       "value such as 1e-8 guards against a zero column).",
                       non_negative()),
      TN_KEY(parallel, pp_layers,
             "Layers of each pipeline stage, first to last, e.g. [3, 5, 4]; empty = model.n_layer / "
             "parallel.pp each. The first stage also holds the embeddings, the last ln_f and the head.",
             all_positive(), int_list_codec()),

      TN_KEY(checkpoint, interval,
             "Steps between checkpoints: one after each step whose console number is a multiple of it, and "
             "one after the last step; 0 = no periodic checkpoints and none at the end. Either way a run that "
             "stops early (--stop-at-step, or preempted by SIGUSR1, SIGTERM or a first Ctrl-C) saves one "
             "before it exits.",
             non_negative()),
      TN_KEY(checkpoint, keep, "Number of most recent checkpoints kept on disk.", positive()),
      TN_KEY(checkpoint, async, "Write checkpoints from a background thread."),

      TN_KEY(monitor, port,
             "TCP port of the Prometheus text endpoint /metrics, served by rank 0 on all "
             "interfaces; 0 = no endpoint.",
             AnyRule{"in [0, 65535]", [](int v) { return v >= 0 && v <= 65535; }}),

      key("precision", &Config::precision,
          "Compute precision: fp32, or bf16 / fp16 mixed precision.",
          one_of({"fp32", "bf16", "fp16"})),
  };
  return table;
}
#undef TN_KEY
#undef TN_PSGD_KEY

const std::map<std::string, std::string>& section_docs() {
  static const std::map<std::string, std::string> docs = {
      {"run", "Where the run writes, and its seed."},
      {"model", "GPT architecture."},
      {"data", "Token data sets."},
      {"train", "Length of the run, batch sizes and evaluation."},
      {"optim", "AdamW and the learning-rate schedule."},
      {"log", "Logging."},
      {"parallel", "Data, tensor and pipeline parallelism."},
      {"parallel.powersgd", "PowerSGD gradient compression on the data-parallel axis (docs/launching.md)."},
      {"checkpoint", "Checkpoints in run.dir/checkpoints (docs/checkpoints.md)."},
      {"monitor", "Live metrics for a monitoring system."},
  };
  return docs;
}

const std::string& steps_doc() {
  static const std::string doc =
      "A step is one optimizer update of train.global_batch_size sequences. Steps are numbered in three "
      "places:\n"
      "\n"
      "- The console's `step N/M` counts from 1: it is printed after the N-th update of M (`train.steps`). "
      "The intervals below count the same way: `log.interval: 10` logs steps 10, 20, ...\n"
      "- `metrics.jsonl`'s `\"step\"` counts from 0: the console's step N is the row with `\"step\": N-1` "
      "(`ternion plot` draws it at N, as the console counts).\n"
      "- A checkpoint `run.dir/checkpoints/step_0000000N` (N zero-padded to 8 digits) holds the state after "
      "N completed optimizer steps, that is after the console's step N (`metrics.jsonl` step N-1). "
      "A run resumed from it says `resumed from ... at step N` and continues with the console's step N+1; "
      "`--stop-at-step N` stops after the console's step N and saves `step_0000000N`.";
  return doc;
}

const std::vector<CrossRule>& cross_rules() {
  static const std::vector<CrossRule> rules = {
      {"model.n_embd must be divisible by model.n_head", {"model.n_embd", "model.n_head"},
       [](const Config& c) { return c.model.n_embd % c.model.n_head == 0; }},
      {"train.global_batch_size must be divisible by train.micro_batch_size",
       {"train.global_batch_size", "train.micro_batch_size"},
       [](const Config& c) { return c.train.global_batch_size % c.train.micro_batch_size == 0; }},
      {"optim.min_lr must be <= optim.lr", {"optim.min_lr", "optim.lr"},
       [](const Config& c) { return c.optim.min_lr <= c.optim.lr; }},
      {"parallel.pp_layers, when given, must list parallel.pp stages whose layers sum to model.n_layer",
       {"parallel.pp_layers", "parallel.pp", "model.n_layer"},
       [](const Config& c) {
         if (c.parallel.pp_layers.empty()) return true;
         int sum = 0;
         for (int x : c.parallel.pp_layers) sum += x;
         return static_cast<int>(c.parallel.pp_layers.size()) == c.parallel.pp && sum == c.model.n_layer;
       }},
  };
  return rules;
}

// ---- Schema lookups derived from the table.

const Key* find_key(const std::string& name) {
  for (const Key& k : keys())
    if (k.name == name) return &k;
  return nullptr;
}

bool is_section(const std::string& name) {
  for (const Key& k : keys())
    if (k.name.size() > name.size() && k.name.compare(0, name.size(), name) == 0 &&
        k.name[name.size()] == '.')
      return true;
  return false;
}

std::vector<std::string> children(const std::string& section) {
  std::string prefix = section.empty() ? "" : section + ".";
  std::vector<std::string> out;
  for (const Key& k : keys()) {
    if (k.name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string child = k.name.substr(prefix.size());
    child = child.substr(0, child.find('.'));
    if (out.empty() || out.back() != child) out.push_back(child);
  }
  return out;
}

std::string enclosing_section(std::string name) {
  while (true) {
    size_t dot = name.rfind('.');
    if (dot == std::string::npos) return "";
    name.resize(dot);
    if (is_section(name)) return name;
  }
}

}  // namespace ternion::train::schema

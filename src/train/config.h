// Run configuration: the only place that reads config files. Everything below `train`
// takes the plain structs (or narrower options built from them), never YAML.
//
// Keys are dotted paths ("optim.lr"). The defaults are the member initialisers below;
// the key table in config_schema.cpp (name, type, rule, doc) is the one source for
// parsing, validation, to_yaml and the generated reference in docs/config.md.
//
// To add a key: add the member here, add one line to the table in config_schema.cpp,
// then regenerate the docs: TERNION_UPDATE_DOCS=1 ./build/src/train/config_test
//
// Errors: ternion::Error whose message starts with "config: ", then "FILE:LINE: " where
// the offending value came from a file, or "override 'k=v': " where it came from an
// override, then the dotted key, the value and why it is rejected.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ternion::train {

struct RunConfig {
  std::string dir = "runs/default";
  int64_t seed = 1337;
  bool operator==(const RunConfig&) const = default;
};

struct ModelConfig {
  int vocab_size = 256;   // V
  int block_size = 256;   // T, the maximum context length
  int n_layer = 6;        // L
  int n_head = 6;         // H; n_embd % n_head == 0
  int n_embd = 384;       // C
  double dropout = 0.0;   // in [0, 1)
  std::string init_from;  // checkpoint to initialise the weights from; "" = random init
  bool operator==(const ModelConfig&) const = default;
};

struct DataConfig {
  std::string train = "data/tinyshakespeare_train.h5";
  std::string val;  // "" = no validation set
  bool shuffle = false;
  bool operator==(const DataConfig&) const = default;
};

struct TrainConfig {
  int steps = 1000;
  int global_batch_size = 8;  // sequences per optimizer step, summed over data-parallel ranks
  int micro_batch_size = 8;   // sequences per forward/backward on one rank
  int eval_interval = 0;      // 0 = never
  int eval_batches = 8;
  std::string activation_checkpointing = "none";  // "none" | "selective" | "full"
  int checkpoint_layers = 0;                       // of each stage's layers, from its first; 0 = all
  bool operator==(const TrainConfig&) const = default;
};

struct OptimConfig {
  double lr = 6e-4;  // peak learning rate, reached after warmup
  double min_lr = 6e-5;
  int warmup_steps = 100;
  std::string schedule = "cosine";  // "cosine" | "constant"
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;  // max global grad norm; 0 disables clipping
  bool operator==(const OptimConfig&) const = default;
};

struct LogConfig {
  int interval = 10;  // steps between log lines
  bool operator==(const LogConfig&) const = default;
};

// PowerSGD on the data-parallel axis (parallel.powersgd.*; docs/config.md).
struct PowerSgdConfig {
  int rank = 0;                          // 0 = off
  int64_t start_step = 10;               // plain all-reduce for the steps before it
  double min_compression_rate = 2.0;
  bool warm_start = true;
  bool error_feedback = true;
  double orthogonalization_epsilon = 0.0;
  bool operator==(const PowerSgdConfig&) const = default;
};

struct ParallelConfig {
  int dp = 0;  // 0 = auto: world_size / (tp * pp); "auto" in YAML
  int tp = 1;
  int pp = 1;
  std::string order = "tp-dp-pp";  // rank layout, innermost dimension first
  double bucket_mb = 25.0;         // gradient all-reduce bucket size, MiB
  std::string pp_schedule = "1f1b";  // "gpipe" | "1f1b" | "interleaved"
  int virtual_stages = 1;            // interleaved: model chunks per stage
  std::vector<int> pp_layers;        // layers per stage; empty = n_layer / pp each
  bool sequence_parallel = false;    // with tp > 1: LayerNorm and dropout regions split over tp
  int zero_stage = 0;                // ZeRO over dp: 0 (replicated), 1, 2 or 3
  bool zero_prefetch = true;         // stage 3: start the next region's gather early
  PowerSgdConfig powersgd;
  bool operator==(const ParallelConfig&) const = default;
};

struct CheckpointConfig {
  int interval = 0;  // steps between checkpoints; 0 = never
  int keep = 2;      // most recent checkpoints kept on disk
  bool async = true;
  bool operator==(const CheckpointConfig&) const = default;
};

struct MonitorConfig {
  int port = 0;  // HTTP port of the Prometheus /metrics endpoint on rank 0; 0 = off
  bool operator==(const MonitorConfig&) const = default;
};

struct Config {
  RunConfig run;
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  LogConfig log;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  MonitorConfig monitor;
  std::string precision = "fp32";  // "fp32" | "bf16" | "fp16"
  bool operator==(const Config&) const = default;
};

// Reads the YAML file at `path`, applies `overrides` ("optim.lr=1e-3", "parallel.dp=auto";
// each value parsed as a YAML scalar) in order, then validates.
// Throws Error on a missing/unreadable file, YAML syntax errors, unknown keys (the message
// lists the valid keys of that section), wrong types, and anything validate() rejects.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// As load_config, from text; `source_name` stands in for the path in error messages.
Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

// Throws Error naming the key, its value and the rule broken (every broken rule, one per
// line). Checks only what the config alone decides; checks that need the world size
// (dp * tp * pp == world_size, batch divisibility by dp) belong to the parallel setup.
void validate(const Config& config);

// The full resolved config, every key, in table order. Deterministic (fit for hashing
// across ranks) and exact: parse_config(to_yaml(c), ...) == c for any valid c.
std::string to_yaml(const Config& config);

// Markdown reference of every key (type, rule, default, description) and of the rules
// across keys; docs/config.md holds it verbatim between marker comments.
std::string config_reference_markdown();

}  // namespace ternion::train

#include "train/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "train/config_schema.h"

namespace ternion::train {
namespace {

using ::testing::HasSubstr;

// The message of the Error that fn throws; fails the test if it throws nothing.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ternion::Error";
  return "";
}

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { parse_config(yaml, "x.yaml", overrides); });
}

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "ternion_config_test_" + name;
  std::ofstream(path) << text;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Config, Defaults) {
  Config c = parse_config("", "empty.yaml");
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.run.dir, "runs/default");
  EXPECT_EQ(c.run.seed, 1337);
  EXPECT_EQ(c.model.n_embd, 384);
  EXPECT_EQ(c.data.train, "data/tinyshakespeare_train.h5");
  EXPECT_EQ(c.optim.lr, 6e-4);
  EXPECT_EQ(c.optim.schedule, "cosine");
  EXPECT_EQ(c.parallel.dp, 0);  // auto
  EXPECT_EQ(c.parallel.order, "tp-dp-pp");
  EXPECT_TRUE(c.checkpoint.async);
  EXPECT_EQ(c.precision, "fp32");
  EXPECT_NO_THROW(validate(Config{}));
  // A comment-only file and empty sections are defaults too.
  EXPECT_EQ(parse_config("# nothing\n", "c.yaml"), Config{});
  EXPECT_EQ(parse_config("optim:\nmodel:\n", "c.yaml"), Config{});
}

const char* kFull = R"(# every key, none at its default
run:
  dir: runs/full
  seed: -7
model:
  vocab_size: 50304
  block_size: 1024
  n_layer: 12
  n_head: 12
  n_embd: 768
  dropout: 0.1
  init_from: runs/base/ckpt_1000
data:
  train: data/owt_train.h5
  val: data/owt_val.h5
  shuffle: true
train:
  steps: 5000
  global_batch_size: 64
  micro_batch_size: 16
  eval_interval: 250
  eval_batches: 20
optim:
  lr: 1.5e-3
  min_lr: 0
  warmup_steps: 0
  schedule: constant
  weight_decay: 0.0
  beta1: 0.8
  beta2: 0.99
  eps: 1e-6
  grad_clip: 0
log:
  interval: 1
parallel:
  dp: 2
  tp: 2
  pp: 4
  order: dp-tp-pp
  bucket_mb: 12.5
checkpoint:
  interval: 500
  keep: 5
  async: false
precision: bf16
)";

TEST(Config, FullFile) {
  Config c = load_config(write_temp("full.yaml", kFull));
  EXPECT_EQ(c.run.dir, "runs/full");
  EXPECT_EQ(c.run.seed, -7);
  EXPECT_EQ(c.model.vocab_size, 50304);
  EXPECT_EQ(c.model.block_size, 1024);
  EXPECT_EQ(c.model.n_layer, 12);
  EXPECT_EQ(c.model.n_head, 12);
  EXPECT_EQ(c.model.n_embd, 768);
  EXPECT_EQ(c.model.dropout, 0.1);
  EXPECT_EQ(c.model.init_from, "runs/base/ckpt_1000");
  EXPECT_EQ(c.data.train, "data/owt_train.h5");
  EXPECT_EQ(c.data.val, "data/owt_val.h5");
  EXPECT_TRUE(c.data.shuffle);
  EXPECT_EQ(c.train.steps, 5000);
  EXPECT_EQ(c.train.global_batch_size, 64);
  EXPECT_EQ(c.train.micro_batch_size, 16);
  EXPECT_EQ(c.train.eval_interval, 250);
  EXPECT_EQ(c.train.eval_batches, 20);
  EXPECT_EQ(c.optim.lr, 1.5e-3);
  EXPECT_EQ(c.optim.min_lr, 0.0);
  EXPECT_EQ(c.optim.warmup_steps, 0);
  EXPECT_EQ(c.optim.schedule, "constant");
  EXPECT_EQ(c.optim.weight_decay, 0.0);
  EXPECT_EQ(c.optim.beta1, 0.8);
  EXPECT_EQ(c.optim.beta2, 0.99);
  EXPECT_EQ(c.optim.eps, 1e-6);
  EXPECT_EQ(c.optim.grad_clip, 0.0);
  EXPECT_EQ(c.log.interval, 1);
  EXPECT_EQ(c.parallel.dp, 2);
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_EQ(c.parallel.pp, 4);
  EXPECT_EQ(c.parallel.order, "dp-tp-pp");
  EXPECT_EQ(c.parallel.bucket_mb, 12.5);
  EXPECT_EQ(c.checkpoint.interval, 500);
  EXPECT_EQ(c.checkpoint.keep, 5);
  EXPECT_FALSE(c.checkpoint.async);
  EXPECT_EQ(c.precision, "bf16");
}

TEST(Config, UnknownKeyNamesKeyLineAndValidKeys) {
  std::string e = parse_error("optim:\n  lr: 1e-3\n\n  lrr: 2\n");
  EXPECT_THAT(e, HasSubstr("config: x.yaml:4: unknown key 'optim.lrr' (valid keys in 'optim': "
                           "lr, min_lr, warmup_steps, schedule,"));
  e = parse_error("run:\n  seed: 1\nmodle:\n  n_layer: 2\n");
  EXPECT_THAT(e, HasSubstr("config: x.yaml:3: unknown key 'modle' (valid top-level keys: run, "
                           "model, data, train, optim, log, parallel, checkpoint, monitor, "
                           "precision)"));
  e = parse_error("model:\n  attn:\n    heads: 3\n");
  EXPECT_THAT(e, HasSubstr("config: x.yaml:2: unknown key 'model.attn' (valid keys in 'model'"));
  EXPECT_THAT(parse_error("log:\n  interval: 5\n  interval: 6\n"),
              HasSubstr("config: x.yaml:3: duplicate key 'log.interval'"));
}

TEST(Config, WrongTypeNamesKeyLineTypeAndValue) {
  EXPECT_THAT(parse_error("train:\n  steps: abc\n"),
              HasSubstr("config: x.yaml:2: wrong type for 'train.steps': expected int, "
                        "found \"abc\""));
  EXPECT_THAT(parse_error("train:\n  steps: 3.5\n"), HasSubstr("expected int, found \"3.5\""));
  EXPECT_THAT(parse_error("train:\n  steps: 99999999999\n"), HasSubstr("expected int"));
  EXPECT_THAT(parse_error("model:\n  n_layer: {a: 1}\n"),
              HasSubstr("config: x.yaml:2: wrong type for 'model.n_layer': expected int, "
                        "found a map"));
  EXPECT_THAT(parse_error("run:\n  dir: [a, b]\n"),
              HasSubstr("wrong type for 'run.dir': expected string, found a list"));
  EXPECT_THAT(parse_error("optim:\n  lr: fast\n"),
              HasSubstr("wrong type for 'optim.lr': expected float, found \"fast\""));
  EXPECT_THAT(parse_error("optim:\n  lr: .inf\n"), HasSubstr("expected float"));
  EXPECT_THAT(parse_error("data:\n  shuffle: maybe\n"),
              HasSubstr("wrong type for 'data.shuffle': expected bool, found \"maybe\""));
  EXPECT_THAT(parse_error("checkpoint:\n  keep:\n"), HasSubstr("expected int, found nothing"));
  EXPECT_THAT(parse_error("parallel:\n  dp: many\n"), HasSubstr("expected int or auto"));
  EXPECT_THAT(parse_error("run: 5\n"),
              HasSubstr("config: x.yaml:1: wrong type for 'run': expected a section of keys "
                        "(valid keys in 'run': dir, seed), found \"5\""));
  EXPECT_THAT(parse_error("- a\n- b\n"), HasSubstr("config: x.yaml:1: expected a map of sections"));
  // Decimal, not octal.
  EXPECT_EQ(parse_config("train:\n  steps: 010\n", "x.yaml").train.steps, 10);
}

TEST(Config, BadEnumValues) {
  EXPECT_THAT(parse_error("optim:\n  schedule: linear\n"),
              HasSubstr("config: x.yaml:2: optim.schedule must be one of cosine, constant "
                        "(got \"linear\")"));
  EXPECT_THAT(parse_error("precision: fp8\n"),
              HasSubstr("config: x.yaml:1: precision must be one of fp32, bf16, fp16 "
                        "(got \"fp8\")"));
  EXPECT_THAT(parse_error("parallel:\n  order: tp-tp-pp\n"),
              HasSubstr("parallel.order must be tp, dp and pp in some order"));
  EXPECT_EQ(parse_config("parallel:\n  order: pp-dp-tp\n", "x.yaml").parallel.order, "pp-dp-tp");
}

TEST(Config, CrossKeyRules) {
  EXPECT_THAT(parse_error("model:\n  n_head: 6\n  n_embd: 100\n"),
              HasSubstr("config: x.yaml:3: model.n_embd must be divisible by model.n_head "
                        "(model.n_embd = 100, model.n_head = 6)"));
  // Blames the key that was set when the other is a default.
  EXPECT_THAT(parse_error("model:\n  n_head: 5\n"),
              HasSubstr("config: x.yaml:2: model.n_embd must be divisible by model.n_head"));
  EXPECT_THAT(parse_error("train:\n  global_batch_size: 12\n"),
              HasSubstr("config: x.yaml:2: train.global_batch_size must be divisible by "
                        "train.micro_batch_size (train.global_batch_size = 12, "
                        "train.micro_batch_size = 8)"));
  EXPECT_THAT(parse_error("optim:\n  lr: 1e-5\n"),
              HasSubstr("optim.min_lr must be <= optim.lr (optim.min_lr = 6e-5, optim.lr = 1e-5)"));
  // Pipeline stage sizes: one per stage, summing to the layers.
  EXPECT_THAT(parse_error("parallel:\n  pp: 2\n  pp_layers: [3, 4]\n"),
              HasSubstr("parallel.pp_layers, when given, must list parallel.pp stages whose layers sum to "
                        "model.n_layer (parallel.pp_layers = [3, 4], parallel.pp = 2, model.n_layer = 6)"));
  EXPECT_THAT(parse_error("parallel:\n  pp_layers: [3, 0]\n"), HasSubstr("parallel.pp_layers"));
  EXPECT_THAT(parse_error("parallel:\n  pp_layers: [a]\n"), HasSubstr("parallel.pp_layers"));
  EXPECT_EQ(parse_config("parallel:\n  pp: 2\n  pp_layers: [2, 4]\n", "x.yaml").parallel.pp_layers,
            (std::vector<int>{2, 4}));
}

TEST(Config, ValidateNamesKeyValueAndRule) {
  auto invalid = [](auto mutate) {
    Config c;
    mutate(c);
    return error_of([&] { validate(c); });
  };
  EXPECT_EQ(invalid([](Config& c) { c.optim.lr = -1; }),
            "config: optim.lr must be >= 0 (got -1.0)");
  EXPECT_THAT(invalid([](Config& c) { c.optim.min_lr = 1e-3; }),
              HasSubstr("optim.min_lr must be <= optim.lr"));
  EXPECT_EQ(invalid([](Config& c) { c.model.dropout = 1.0; }),
            "config: model.dropout must be in [0, 1) (got 1.0)");
  EXPECT_THAT(invalid([](Config& c) { c.optim.beta1 = 1.0; }),
              HasSubstr("optim.beta1 must be in [0, 1) (got 1.0)"));
  EXPECT_THAT(invalid([](Config& c) { c.optim.beta2 = -0.5; }),
              HasSubstr("optim.beta2 must be in [0, 1) (got -0.5)"));
  EXPECT_THAT(invalid([](Config& c) { c.train.micro_batch_size = 3; }),
              HasSubstr("train.global_batch_size must be divisible by train.micro_batch_size"));
  EXPECT_THAT(invalid([](Config& c) { c.parallel.tp = 0; }), HasSubstr("parallel.tp must be > 0"));
  EXPECT_THAT(invalid([](Config& c) { c.run.dir = ""; }), HasSubstr("run.dir must be non-empty"));
  // Zero sizes are reported as such, without a division by zero in the cross rules;
  // every broken rule is listed, one per line.
  std::string e = invalid([](Config& c) {
    c.model.n_head = 0;
    c.train.steps = -1;
  });
  EXPECT_EQ(e, "config: model.n_head must be > 0 (got 0)\n"
               "config: train.steps must be > 0 (got -1)");
}

TEST(Config, MissingFileNamesPath) {
  std::string e = error_of([] { load_config("/nonexistent/dir/run.yaml"); });
  EXPECT_THAT(e, HasSubstr("config: cannot read config file '/nonexistent/dir/run.yaml': "
                           "no such file"));
  e = error_of([] { load_config(::testing::TempDir()); });
  EXPECT_THAT(e, HasSubstr("not a regular file"));
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(parse_error("model:\n  n_layer: 4\n  n_head: [1, 2\n"),
              HasSubstr("config: x.yaml:"));
  EXPECT_THAT(parse_error("model:\n  n_layer: 4\n  n_head: [1, 2\n"),
              HasSubstr("YAML syntax error"));
  std::string path = write_temp("bad.yaml", "run:\n  seed: 1\n  dir: a: b\n");
  EXPECT_THAT(error_of([&] { load_config(path); }),
              HasSubstr("config: " + path + ":3: YAML syntax error"));
  EXPECT_THAT(parse_error("run:\n  seed: 1\n---\nrun:\n  seed: 2\n"),
              HasSubstr("expected one YAML document, found 2"));
}

TEST(Config, LongValuesAreCutInMessages) {
  // Shown as the first 80 bytes of what the message would hold, then the whole size.
  const std::string huge(1 << 20, 'x');
  const std::string shown = "\"" + std::string(79, 'x') + "... (1048578 bytes)";
  for (const std::string& e : {parse_error("precision: " + huge + "\n"),
                               parse_error("train:\n  steps: " + huge + "\n"),
                               parse_error("", {"precision=" + huge})}) {
    EXPECT_LT(e.size(), 600u) << e.substr(0, 600);
    EXPECT_THAT(e, HasSubstr(shown));
  }
  EXPECT_THAT(parse_error("precision: " + huge + "\n"),
              HasSubstr("x.yaml:1: precision must be one of fp32, bf16, fp16 (got " + shown + ")"));
  EXPECT_THAT(parse_error("train:\n  steps: " + huge + "\n"),
              HasSubstr("x.yaml:2: wrong type for 'train.steps': expected int, found " + shown));
  // Overrides and key names are cut the same way.
  std::string e = parse_error("", {"optim.lr=" + huge});
  EXPECT_LT(e.size(), 600u) << e.substr(0, 600);
  EXPECT_THAT(e, HasSubstr("config: override 'optim.lr=" + std::string(71, 'x') + "... (1048585 bytes)': "));
  e = parse_error("", {"optim." + huge + "=1"});
  EXPECT_LT(e.size(), 900u) << e.substr(0, 900);
  EXPECT_THAT(e, HasSubstr("unknown key 'optim." + std::string(74, 'x') + "... (1048582 bytes)' (valid keys"));
  // Never in the middle of a UTF-8 character: '"ab' then 2-byte characters, cut after 79 bytes.
  std::string accents = "ab";
  for (int i = 0; i < 100; ++i) accents += "\xc3\xa9";
  std::string kept = "\"ab";
  for (int i = 0; i < 38; ++i) kept += "\xc3\xa9";
  EXPECT_THAT(parse_error("precision: " + accents + "\n"), HasSubstr("(got " + kept + "... (204 bytes))"));
  // Short values are shown whole.
  EXPECT_THAT(parse_error("precision: " + std::string(78, 'y') + "\n"),
              HasSubstr("(got \"" + std::string(78, 'y') + "\")"));
}

TEST(Config, DeepNestingIsNamedWithItsLine) {
  const std::string deep(5000, '[');
  std::string e = parse_error("run:\n  seed: 1\n  dir: " + deep + "\n\nmodel:\n  n_layer: 2\n");
  EXPECT_THAT(e, HasSubstr("config: x.yaml:3: YAML nested too deeply (the parser stops at "));
  EXPECT_THAT(e, ::testing::Not(HasSubstr("bad file")));
  // Closed brackets, and "[" in quotes and comments, which do not nest.
  e = parse_error("# [[[[\nrun:\n  dir: \"[[[[\"\n  seed: " + std::string(600, '[') + std::string(600, ']') + "\n");
  EXPECT_THAT(e, HasSubstr("config: x.yaml:4: YAML nested too deeply"));
  // Block maps nested too deeply: the parser's own line.
  std::string block = "run:\n";
  for (int i = 0; i < 600; ++i) block += std::string(2 * i + 2, ' ') + "k" + std::to_string(i) + ":\n";
  EXPECT_THAT(parse_error(block), ::testing::ContainsRegex("config: x.yaml:[0-9]+: YAML nested too deeply"));
  e = parse_error("", {"run.dir=" + deep});
  EXPECT_THAT(e, HasSubstr("the value is nested too deeply"));
  EXPECT_LT(e.size(), 400u) << e.substr(0, 400);
  // Deep but within the parser's limit: an ordinary type error.
  EXPECT_THAT(parse_error("run:\n  dir: " + std::string(100, '[') + std::string(100, ']') + "\n"),
              HasSubstr("wrong type for 'run.dir': expected string, found a list"));
}

TEST(Config, Overrides) {
  std::string path = write_temp("ov.yaml", "optim:\n  lr: 1e-3\nparallel:\n  dp: 2\n");
  Config c = load_config(path, {"optim.lr=2e-3", "train.steps=10", "parallel.dp=auto",
                                "run.dir=runs/x y", "data.val="});
  EXPECT_EQ(c.optim.lr, 2e-3);
  EXPECT_EQ(c.train.steps, 10);  // not in the file
  EXPECT_EQ(c.parallel.dp, 0);
  EXPECT_EQ(c.run.dir, "runs/x y");
  EXPECT_EQ(c.data.val, "");
  EXPECT_EQ(load_config(path, {"parallel.dp=4"}).parallel.dp, 4);
  EXPECT_EQ(load_config(path).parallel.dp, 2);
  // Spaces around the key are ignored; the last override of a key wins.
  EXPECT_EQ(load_config(path, {" precision = bf16", "precision=fp16"}).precision, "fp16");
  EXPECT_EQ(parse_config("parallel:\n  dp: auto\n", "x.yaml").parallel.dp, 0);
}

TEST(Config, OverrideErrorsNameTheOverride) {
  EXPECT_THAT(parse_error("", {"optim.lrr=1e-3"}),
              HasSubstr("config: override 'optim.lrr=1e-3': unknown key 'optim.lrr' (valid keys in "
                        "'optim': lr, min_lr,"));
  EXPECT_THAT(parse_error("", {"foo.bar=1"}),
              HasSubstr("override 'foo.bar=1': unknown key 'foo.bar' (valid top-level keys: run,"));
  EXPECT_THAT(parse_error("", {"optim=1"}), HasSubstr("'optim' is a section, not a key"));
  EXPECT_THAT(parse_error("", {"optim.lr"}), HasSubstr("override 'optim.lr': expected KEY=VALUE"));
  EXPECT_THAT(parse_error("", {"train.steps=abc"}),
              HasSubstr("config: override 'train.steps=abc': wrong type for 'train.steps': "
                        "expected int, found \"abc\""));
  EXPECT_THAT(parse_error("", {"optim.lr=[1"}),
              HasSubstr("config: override 'optim.lr=[1': YAML syntax error"));
  EXPECT_THAT(parse_error("model:\n  n_embd: 384\n", {"model.n_head=5"}),
              HasSubstr("config: x.yaml:2: model.n_embd must be divisible by model.n_head"));
  EXPECT_THAT(parse_error("", {"model.n_head=5"}),
              HasSubstr("config: override 'model.n_head=5': model.n_embd must be divisible"));
}

TEST(Config, ToYamlRoundTrips) {
  EXPECT_EQ(parse_config(to_yaml(Config{}), "resolved.yaml"), Config{});

  Config c = parse_config(kFull, "full.yaml");
  c.optim.lr = 1.0 / 3.0;
  c.optim.eps = 5e-324;  // smallest denormal
  c.optim.weight_decay = 1e300;
  c.parallel.bucket_mb = 100.0;
  c.model.dropout = 0.1 + 0.2;
  c.run.seed = INT64_MIN;
  c.run.dir = "a: \"quoted\" \\ # not a comment\n\ttab \x01 ünïcode";
  c.model.init_from = "~";
  c.data.val = "auto";
  c.parallel.pp = 3;
  c.parallel.pp_layers = {1, c.model.n_layer - 2, 1};
  ASSERT_NO_THROW(validate(c));
  std::string yaml = to_yaml(c);
  EXPECT_EQ(parse_config(yaml, "resolved.yaml"), c) << yaml;
  EXPECT_EQ(to_yaml(parse_config(yaml, "resolved.yaml")), yaml);

  // Every key is written, dp=0 as auto.
  std::string defaults = to_yaml(Config{});
  EXPECT_THAT(defaults, HasSubstr("run:\n  dir: \"runs/default\"\n  seed: 1337\nmodel:\n"));
  EXPECT_THAT(defaults, HasSubstr("  dp: auto\n"));
  EXPECT_THAT(defaults, HasSubstr("  lr: 6e-4\n  min_lr: 6e-5\n"));
  EXPECT_THAT(defaults, HasSubstr("\nprecision: \"fp32\"\n"));
}

// docs/config.md holds config_reference_markdown() between these markers.
// TERNION_UPDATE_DOCS=1 rewrites that part of the file instead of comparing.
constexpr const char* kBegin = "<!-- BEGIN config_reference_markdown() -->\n";
constexpr const char* kEnd = "<!-- END config_reference_markdown() -->\n";

TEST(Config, DocsAreUpToDate) {
  const std::string path = std::string(TERNION_SOURCE_DIR) + "/docs/config.md";
  std::string doc = read_file(path);
  size_t begin = doc.find(kBegin);
  size_t end = doc.find(kEnd);
  ASSERT_NE(begin, std::string::npos) << path << " lacks " << kBegin;
  ASSERT_NE(end, std::string::npos) << path << " lacks " << kEnd;
  begin += std::string(kBegin).size();
  const std::string generated = config_reference_markdown();
  if (std::getenv("TERNION_UPDATE_DOCS") != nullptr) {
    doc.replace(begin, end - begin, generated);
    std::ofstream(path) << doc;
    return;
  }
  EXPECT_EQ(doc.substr(begin, end - begin), generated)
      << path << " is stale; regenerate with TERNION_UPDATE_DOCS=1 " << "config_test";
}

TEST(Config, DocsExampleIsValid) {
  const std::string path = std::string(TERNION_SOURCE_DIR) + "/docs/config.md";
  std::string doc = read_file(path);
  size_t begin = doc.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  std::string example = doc.substr(begin, doc.find("```", begin) - begin);
  Config c = parse_config(example, path + " (example)");
  EXPECT_NE(c, Config{});
}

TEST(Config, DocsSayWhatAStepNumberMeans) {
  const std::string ref = config_reference_markdown();
  EXPECT_THAT(ref, HasSubstr("### Counting steps"));
  EXPECT_THAT(ref, HasSubstr("`step N/M` counts from 1"));
  EXPECT_THAT(ref, HasSubstr("the console's step N is the row with `\"step\": N-1`"));
  EXPECT_THAT(ref, HasSubstr("`run.dir/checkpoints/step_0000000N`"));
  EXPECT_THAT(ref, HasSubstr("continues with the console's step N+1"));
  // checkpoint.interval 0 still saves when a run is stopped (save_due's stop).
  EXPECT_THAT(ref, HasSubstr("0 = no periodic checkpoints and none at the end. Either way a run that stops "
                             "early (--stop-at-step, or preempted by SIGUSR1, SIGTERM or a first Ctrl-C) saves one"));
}

TEST(Config, EveryKeyIsWrittenAndDocumented) {
  const std::string ref = config_reference_markdown();
  const YAML::Node yaml = YAML::Load(to_yaml(Config{}));
  for (const schema::Key& key : schema::keys()) {
    EXPECT_THAT(ref, HasSubstr("| `" + key.name + "` | ")) << key.name;
    YAML::Node node = yaml;
    std::stringstream path(key.name);
    for (std::string part; std::getline(path, part, '.');) node.reset(node[part]);
    EXPECT_TRUE(node.IsScalar() || node.IsSequence()) << key.name << " missing from to_yaml()";
  }
  for (const schema::CrossRule& rule : schema::cross_rules())
    for (const std::string& key : rule.keys) EXPECT_NE(schema::find_key(key), nullptr) << key;
  EXPECT_THAT(ref, HasSubstr("| `parallel.dp` | int or auto, >= 0 | `auto` |"));
  EXPECT_THAT(ref,
              HasSubstr("| `optim.schedule` | string, one of cosine, constant | `\"cosine\"` |"));
}

}  // namespace
}  // namespace ternion::train

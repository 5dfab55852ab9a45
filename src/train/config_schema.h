// The config schema: one Key per config key, in the order to_yaml and the docs show them.
// config.cpp parses, validates, writes and documents configs from this table alone.
// Internal to src/train; other layers see only config.h.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "train/config.h"

namespace YAML { class Node; }

namespace ternion::train::schema {

struct Key {
  std::string name;  // dotted path, "optim.lr"
  std::string type;  // "int", "float", "bool", "string", ...: for docs and errors
  std::string rule;  // what the value "must be", "> 0"; "" = any value of the type
  std::string doc;
  // Sets the key from a YAML node; false (config unchanged) when the node is not of `type`.
  std::function<bool(const YAML::Node&, Config&)> decode;
  // The key's value as YAML text that decode reads back to the same value.
  std::function<std::string(const Config&)> encode;
  std::function<bool(const Config&)> ok;  // the value satisfies `rule`
};

// A rule relating keys; checked only once every key satisfies its own rule.
struct CrossRule {
  std::string rule;               // "model.n_embd must be divisible by model.n_head"
  std::vector<std::string> keys;  // shown with their values in the error
  std::function<bool(const Config&)> ok;
};

// Keys of one section are contiguous, sections in the order they appear in the docs.
const std::vector<Key>& keys();
const std::vector<CrossRule>& cross_rules();
// One-line description of each section, for the docs.
const std::map<std::string, std::string>& section_docs();
// What "step N" means on the console, in metrics.jsonl and in checkpoint names, for the
// docs (Markdown, before the keys that count steps).
const std::string& steps_doc();

const Key* find_key(const std::string& name);  // nullptr if no such key
bool is_section(const std::string& name);      // some key lies under name + "."
// Direct children of a section ("" = top level), in table order: "optim" -> lr, min_lr, ...
std::vector<std::string> children(const std::string& section);
// The innermost section that `name` would belong to ("" = top level).
std::string enclosing_section(std::string name);

// YAML double-quoted scalar.
std::string quote(const std::string& s);
std::string join(const std::vector<std::string>& parts, const std::string& sep);

}  // namespace ternion::train::schema

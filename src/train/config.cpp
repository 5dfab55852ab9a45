// Loading, checking, writing and documenting configs, all driven by the schema table.
#include "train/config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "train/config_schema.h"

namespace ternion::train {
namespace {

using schema::CrossRule;
using schema::Key;
using schema::children;
using schema::cross_rules;
using schema::find_key;
using schema::is_section;
using schema::join;
using schema::keys;
using schema::quote;
using schema::section_docs;

[[noreturn]] void config_error(const std::string& where, const std::string& msg) {
  throw Error(where.empty() ? "config: " + msg : "config: " + where + ": " + msg);
}

std::string valid_keys(const std::string& section) {
  return section.empty() ? "valid top-level keys: " + join(children(""), ", ")
                         : "valid keys in '" + section + "': " + join(children(section), ", ");
}

// Text from the user in a message is cut to its first kShownBytes bytes (whole UTF-8
// characters) and its size, so a 10 MB scalar does not become a 10 MB error.
constexpr size_t kShownBytes = 80;

size_t shown_prefix(const std::string& s) {
  if (s.size() <= kShownBytes) return s.size();
  size_t n = kShownBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // a continuation byte
  return n;
}

// Text as the message would show it (a key name, an override, a quoted value), cut if
// long: "xxxx... (10485762 bytes).
std::string clip(const std::string& s) {
  const size_t n = shown_prefix(s);
  return n == s.size() ? s : s.substr(0, n) + "... (" + std::to_string(s.size()) + " bytes)";
}

// The line (1-based) where brackets first nest `depth` deep, skipping quoted text and
// comments; 0 if they never do. yaml-cpp reports deep flow nesting ("[[[[...") at the end
// of the text: this finds where it is.
int line_of_flow_depth(const std::string& text, int depth) {
  int line = 1, d = 0;
  char in_quote = 0;
  bool comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (in_quote) {
      if (c == in_quote) in_quote = 0;
      if (c == '\\' && in_quote == '"' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') in_quote = c;
    if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1])))) comment = true;
    if ((c == '[' || c == '{') && ++d >= depth) return line;
    if ((c == ']' || c == '}') && d > 0) --d;
  }
  return 0;
}

// The found value in a type error.
std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return clip(quote(n.Scalar()));
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  return "nothing (null)";
}

std::string at_line(const std::string& source, const YAML::Mark& mark) {
  return mark.is_null() ? source : source + ":" + std::to_string(mark.line + 1);
}

// Where each key's value came from ("x.yaml:7", "override 'optim.lr=1'"), for messages.
using Origins = std::map<std::string, std::string>;

void set_value(const Key& key, const YAML::Node& value, const std::string& where, Config& config,
               Origins& origins) {
  if (!key.decode(value, config))
    config_error(where, "wrong type for '" + key.name + "': expected " + key.type + ", found " +
                            describe(value));
  origins[key.name] = where;
}

void read_section(const YAML::Node& map, const std::string& section, const std::string& source,
                  Config& config, Origins& origins) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string where = at_line(source, kv.first.Mark());
    if (!kv.first.IsScalar())
      config_error(where, "expected a key name, found " + describe(kv.first));
    const std::string& leaf = kv.first.Scalar();
    const std::string name = section.empty() ? leaf : section + "." + leaf;
    if (!seen.insert(name).second) config_error(where, "duplicate key '" + clip(name) + "'");
    if (const Key* key = find_key(name)) {
      set_value(*key, kv.second, where, config, origins);
    } else if (is_section(name)) {
      if (kv.second.IsNull()) continue;  // "optim:" with no keys under it
      if (!kv.second.IsMap())
        config_error(where, "wrong type for '" + name + "': expected a section of keys (" +
                                valid_keys(name) + "), found " + describe(kv.second));
      read_section(kv.second, name, source, config, origins);
    } else {
      config_error(where, "unknown key '" + clip(name) + "' (" + valid_keys(section) + ")");
    }
  }
}

void apply_override(const std::string& text, Config& config, Origins& origins) {
  const std::string where = "override '" + clip(text) + "'";
  size_t eq = text.find('=');
  if (eq == std::string::npos) config_error(where, "expected KEY=VALUE, e.g. optim.lr=1e-3");
  std::string name = text.substr(0, eq);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
  const Key* key = find_key(name);
  if (key == nullptr && is_section(name))
    config_error(where, "'" + name + "' is a section, not a key (" + valid_keys(name) + ")");
  if (key == nullptr)
    config_error(where, "unknown key '" + clip(name) + "' (" +
                            valid_keys(schema::enclosing_section(name)) + ")");
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::DeepRecursion& e) {
    config_error(where, "the value is nested too deeply (the YAML parser stops at " +
                            std::to_string(e.depth()) + " levels of maps or lists; a key takes a scalar)");
  } catch (const YAML::Exception& e) {
    config_error(where, "YAML syntax error in the value: " + e.msg);
  }
  set_value(*key, value, where, config, origins);
}

// Every broken rule, one message per line; cross rules only once every key is in range.
void check(const Config& config, const Origins& origins) {
  auto located = [&](const std::string& key_name, const std::string& msg) {
    auto it = origins.find(key_name);
    return "config: " + (it == origins.end() ? "" : it->second + ": ") + msg;
  };
  std::vector<std::string> issues;
  for (const Key& k : keys())
    if (!k.ok(config))
      issues.push_back(
          located(k.name, k.name + " must be " + k.rule + " (got " + clip(k.encode(config)) + ")"));
  if (issues.empty()) {
    for (const CrossRule& r : cross_rules()) {
      if (r.ok(config)) continue;
      std::vector<std::string> values;
      std::string blamed = r.keys.front();
      for (const std::string& k : r.keys) {
        values.push_back(k + " = " + clip(find_key(k)->encode(config)));
        if (!origins.count(blamed) && origins.count(k)) blamed = k;
      }
      issues.push_back(located(blamed, r.rule + " (" + join(values, ", ") + ")"));
    }
  }
  if (!issues.empty()) throw Error(join(issues, "\n"));
}

std::string md_cell(std::string s) {
  for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.insert(i, "\\");
  return s;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp stops at a fixed depth and calls it "bad file".
    const int flow_line = line_of_flow_depth(yaml_text, e.depth() / 2);
    config_error(flow_line > 0 ? source_name + ":" + std::to_string(flow_line) : at_line(source_name, e.mark),
                 "YAML nested too deeply (the parser stops at " + std::to_string(e.depth()) +
                     " levels of maps or lists; a config's sections nest two deep)");
  } catch (const YAML::Exception& e) {
    config_error(at_line(source_name, e.mark), "YAML syntax error: " + e.msg);
  }
  if (docs.size() > 1)
    config_error(at_line(source_name, docs[1].Mark()),
                 "expected one YAML document, found " + std::to_string(docs.size()));
  Config config;
  Origins origins;
  if (!docs.empty() && !docs[0].IsNull()) {
    if (!docs[0].IsMap())
      config_error(at_line(source_name, docs[0].Mark()),
                   "expected a map of sections at the top level, found " + describe(docs[0]));
    read_section(docs[0], "", source_name, config, origins);
  }
  for (const std::string& o : overrides) apply_override(o, config, origins);
  check(config, origins);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    config_error("", "cannot read config file '" + path + "': " +
                         (std::filesystem::exists(path, ec) ? "not a regular file"
                                                            : "no such file"));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) config_error("", "cannot read config file '" + path + "'");
  return parse_config(text.str(), path, overrides);
}

void validate(const Config& config) { check(config, {}); }

std::string to_yaml(const Config& config) {
  std::string out;
  std::vector<std::string> open;  // path of the section the previous key was in
  for (const Key& k : keys()) {
    std::vector<std::string> path;
    std::stringstream parts(k.name);
    for (std::string p; std::getline(parts, p, '.');) path.push_back(p);
    const std::string leaf = path.back();
    path.pop_back();
    size_t common = 0;
    while (common < open.size() && common < path.size() && open[common] == path[common]) ++common;
    open.resize(common);
    for (; common < path.size(); ++common) {
      out += std::string(2 * common, ' ') + path[common] + ":\n";
      open.push_back(path[common]);
    }
    out += std::string(2 * path.size(), ' ') + leaf + ": " + k.encode(config) + "\n";
  }
  return out;
}

std::string config_reference_markdown() {
  const Config defaults;
  std::string out = "## Reference\n\n### Counting steps\n\n" + schema::steps_doc() + "\n";
  std::optional<std::string> section;
  for (const Key& k : keys()) {
    size_t dot = k.name.rfind('.');
    std::string s = dot == std::string::npos ? "" : k.name.substr(0, dot);
    if (s != section) {
      section = s;
      out += "\n### " + (s.empty() ? std::string("Top-level keys") : "`" + s + "`") + "\n\n";
      auto doc = section_docs().find(s);
      if (doc != section_docs().end()) out += doc->second + "\n\n";
      out += "| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n";
    }
    std::string type = k.rule.empty() ? k.type : k.type + ", " + k.rule;
    out += "| `" + k.name + "` | " + md_cell(type) + " | `" + md_cell(k.encode(defaults)) + "` | " +
           md_cell(k.doc) + " |\n";
  }
  out += "\n### Rules across keys\n\n";
  for (const CrossRule& r : cross_rules()) out += "- " + r.rule + "\n";
  return out;
}

}  // namespace ternion::train

// A minimal JSON reader for test goldens: objects, arrays, numbers, strings (no \u escapes
// beyond ASCII), true/false/null. Enough for files written by Python's json module; not a
// general-purpose parser. Throws std::runtime_error naming the offset on malformed input.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ternion::testing {

struct Json {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  double number = 0;
  bool boolean = false;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  // Member `key` of an object; throws naming the key when absent.
  const Json& operator[](const std::string& key) const {
    auto it = object.find(key);
    if (kind != Kind::object || it == object.end())
      throw std::runtime_error("json: no member '" + key + "'");
    return it->second;
  }
  const Json& operator[](size_t i) const { return array.at(i); }
  bool has(const std::string& key) const { return object.count(key) > 0; }
  std::vector<double> numbers() const {
    std::vector<double> out;
    for (const Json& v : array) out.push_back(v.number);
    return out;
  }

  static Json parse(const std::string& text) {
    size_t pos = 0;
    Json v = parse_value(text, pos);
    skip_ws(text, pos);
    if (pos != text.size()) fail(pos, "trailing characters");
    return v;
  }
  static Json parse_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("json: cannot read '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str());
  }

 private:
  [[noreturn]] static void fail(size_t pos, const std::string& what) {
    throw std::runtime_error("json: " + what + " at offset " + std::to_string(pos));
  }
  static void skip_ws(const std::string& s, size_t& p) {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\t' || s[p] == '\r')) ++p;
  }
  static void expect(const std::string& s, size_t& p, const char* word) {
    const std::string w(word);
    if (s.compare(p, w.size(), w) != 0) fail(p, "expected '" + w + "'");
    p += w.size();
  }
  static std::string parse_string(const std::string& s, size_t& p) {
    if (s[p] != '"') fail(p, "expected a string");
    std::string out;
    for (++p; p < s.size() && s[p] != '"'; ++p) {
      if (s[p] != '\\') {
        out += s[p];
        continue;
      }
      if (++p >= s.size()) break;
      switch (s[p]) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'u': out += static_cast<char>(std::strtol(s.substr(p + 1, 4).c_str(), nullptr, 16)); p += 4; break;
        default: out += s[p];
      }
    }
    if (p >= s.size()) fail(p, "unterminated string");
    ++p;
    return out;
  }
  static Json parse_value(const std::string& s, size_t& p) {
    skip_ws(s, p);
    if (p >= s.size()) fail(p, "unexpected end");
    Json v;
    const char c = s[p];
    if (c == '{') {
      v.kind = Kind::object;
      ++p;
      skip_ws(s, p);
      if (s[p] == '}') return ++p, v;
      for (;;) {
        skip_ws(s, p);
        std::string key = parse_string(s, p);
        skip_ws(s, p);
        expect(s, p, ":");
        v.object[key] = parse_value(s, p);
        skip_ws(s, p);
        if (s[p] == ',') { ++p; continue; }
        expect(s, p, "}");
        return v;
      }
    }
    if (c == '[') {
      v.kind = Kind::array;
      ++p;
      skip_ws(s, p);
      if (s[p] == ']') return ++p, v;
      for (;;) {
        v.array.push_back(parse_value(s, p));
        skip_ws(s, p);
        if (s[p] == ',') { ++p; continue; }
        expect(s, p, "]");
        return v;
      }
    }
    if (c == '"') {
      v.kind = Kind::string;
      v.string = parse_string(s, p);
      return v;
    }
    if (c == 't') { expect(s, p, "true"); v.kind = Kind::boolean; v.boolean = true; return v; }
    if (c == 'f') { expect(s, p, "false"); v.kind = Kind::boolean; return v; }
    if (c == 'n') { expect(s, p, "null"); return v; }
    char* end = nullptr;
    v.number = std::strtod(s.c_str() + p, &end);  // also reads NaN/Infinity as Python writes them
    if (end == s.c_str() + p) fail(p, "expected a value");
    v.kind = Kind::number;
    p = static_cast<size_t>(end - s.c_str());
    return v;
  }
};

}  // namespace ternion::testing

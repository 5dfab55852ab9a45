#include "cli/args.h"

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace ternion::cli {

namespace {
std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& k : s) out += (out.empty() ? "--" : ", --") + k;
  return out;
}
}  // namespace

bool is_help(const std::string& arg) { return arg == "--help" || arg == "-h"; }

Args::Args(int argc, char** argv, const std::set<std::string>& known,
           const std::set<std::string>& repeatable, const std::set<std::string>& flags)
    : command_(argv[0]) {
  std::set<std::string> all = known;
  all.insert(repeatable.begin(), repeatable.end());
  all.insert(flags.begin(), flags.end());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (is_help(a)) throw HelpRequested{};
    TN_CHECK(a.rfind("--", 0) == 0, command_, "unexpected argument '", a, "' (options: ", join(all), ")");
    a = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    TN_CHECK(all.count(a), command_, "unknown option '--", a, "' (options: ", join(all), ")");
    if (flags.count(a)) {
      values_[a].push_back("1");
      continue;
    }
    if (!has_value) {
      TN_CHECK(i + 1 < argc, command_, "option '--", a, "' needs a value");
      value = argv[++i];
    }
    TN_CHECK(repeatable.count(a) || !values_.count(a), command_, "option '--", a, "' given twice");
    values_[a].push_back(value);
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::required(const std::string& name) const {
  TN_CHECK(has(name), command_, "missing required option '--", name, "'");
  return get(name);
}

const std::vector<std::string>& Args::all(const std::string& name) const {
  static const std::vector<std::string> empty;
  auto it = values_.find(name);
  return it == values_.end() ? empty : it->second;
}

double Args::number(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  TN_CHECK(end && *end == '\0' && !v.empty(), command_, "option '--", name, "' needs a number, got '", v, "'");
  return d;
}

int64_t Args::integer(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  TN_CHECK(end && *end == '\0' && !v.empty() && errno == 0, command_, "option '--", name,
           "' needs a whole number, got '", v, "'");
  return n;
}

}  // namespace ternion::cli

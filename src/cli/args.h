// Minimal option parsing for subcommands: --name VALUE, --name=VALUE and repeatable
// options; unknown options are errors that list the known ones. --help (or -h) where an
// option may stand throws HelpRequested, which main() answers with the command's usage.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ternion::cli {

// Not an error: main() prints the usage of the command on stdout and exits 0.
struct HelpRequested {};

bool is_help(const std::string& arg);  // "--help" or "-h"

class Args {
 public:
  // known: option names without dashes; repeatable ones collect every value.
  Args(int argc, char** argv, const std::set<std::string>& known,
       const std::set<std::string>& repeatable = {}, const std::set<std::string>& flags = {});
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::string required(const std::string& name) const;
  const std::vector<std::string>& all(const std::string& name) const;
  double number(const std::string& name, double fallback) const;
  // A whole decimal number; throws naming the option when the value is not one.
  int64_t integer(const std::string& name, int64_t fallback) const;

 private:
  std::string command_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace ternion::cli

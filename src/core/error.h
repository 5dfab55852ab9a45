// Error policy of the core layer: misuse throws ternion::Error whose message starts
// with "[op]" and shows the offending values (shapes, dtypes, keys).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ternion {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything that streams (strings, string_views, numbers) into one string.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] inline void fail(std::string_view op, std::string_view msg) {
  throw Error(str_cat("[", op, "] ", msg));
}

// TN_CHECK(cond, "op", parts...): throws Error("[op] parts...") when cond is false.
#define TN_CHECK(cond, op, ...)                                                 \
  do {                                                                          \
    if (!(cond)) ::ternion::fail(op, ::ternion::str_cat(__VA_ARGS__));          \
  } while (0)

}  // namespace ternion

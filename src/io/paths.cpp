#include "io/paths.h"

#include <algorithm>
#include <system_error>

#include "core/error.h"
#include "io/durable.h"

namespace ternion::io {

namespace fs = std::filesystem;

namespace {

fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

// `inner` is `outer` or below it, component by component ("/a/bc" is not inside "/a/b").
bool within(const fs::path& inner, const fs::path& outer) {
  return std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end()).first == outer.end();
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec) && !ec;
}

}  // namespace

void refuse_output_over_inputs(const fs::path& output, const std::vector<fs::path>& inputs, std::string_view op) {
  for (const fs::path& written : {output, tmp_path(output)}) {
    const fs::path out = resolved(written);
    for (const fs::path& input : inputs) {
      const fs::path in = resolved(input);
      std::error_code ec;
      if (out == in || same_file(written, input))
        fail(op, str_cat("refusing to write '", output.string(), "': it is the input '", input.string(), "'"));
      if (fs::is_directory(in, ec) && within(out, in))
        fail(op, str_cat("refusing to write '", output.string(), "': it is inside the input directory '",
                         input.string(), "'"));
    }
  }
}

}  // namespace ternion::io

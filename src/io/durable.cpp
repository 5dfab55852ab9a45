#include "io/durable.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "core/error.h"

namespace ternion::io {

namespace fs = std::filesystem;

fs::path tmp_path(const fs::path& path) { return fs::path(path.string() + std::string(kTmpSuffix)); }

void fsync_path(const fs::path& path, bool directory, std::string_view op) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  TN_CHECK(fd >= 0, op, "cannot open '", path.string(), "' to fsync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  TN_CHECK(rc == 0, op, "fsync of '", path.string(), "' failed: ", std::strerror(err));
}

void publish(const fs::path& tmp, const fs::path& path, std::string_view op) {
  std::error_code ec;
  const bool directory = fs::is_directory(tmp, ec);
  fsync_path(tmp, directory, op);
  fs::rename(tmp, path, ec);
  TN_CHECK(!ec, op, "cannot rename '", tmp.string(), "' to '", path.string(), "': ", ec.message());
  const fs::path parent = path.parent_path();
  fsync_path(parent.empty() ? fs::path(".") : parent, true, op);
}

void write_file_atomically(const fs::path& path, std::string_view bytes, std::string_view op) {
  const fs::path tmp = tmp_path(path);
  try {
    {
      std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.flush();
      TN_CHECK(out.good(), op, "cannot write '", tmp.string(), "'");
    }
    publish(tmp, path, op);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

}  // namespace ternion::io

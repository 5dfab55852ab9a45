// Durable files on a POSIX filesystem: what a crash may leave behind is either the old
// file or the complete new one, never a half-written file at the final path.
//
//   write X at "path.tmp" ...;  io::publish("path.tmp", "path", "op");
//
// Every function throws ternion::Error("[op] ...") naming the path and the system's
// reason; `op` names the caller's operation (a checkpoint save, a weights export).
#pragma once

#include <filesystem>
#include <string_view>

namespace ternion::io {

// The suffix of a file or directory that is still being written (never read as complete).
inline constexpr std::string_view kTmpSuffix = ".tmp";

// "<path>.tmp".
std::filesystem::path tmp_path(const std::filesystem::path& path);

// fsync(2) of a file, or of a directory (which makes its entries, e.g. a rename, durable).
void fsync_path(const std::filesystem::path& path, bool directory, std::string_view op);

// Publishes `tmp`, completely written and closed, as `path`: fsyncs `tmp` (a file, or a
// directory whose contents are already durable), renames it to `path` (replacing a file
// there; a directory at `path` must not exist), then fsyncs the directory holding `path`.
// After a crash `path` is the old file (or absent) or the complete new one. On failure
// `tmp` is left for the caller to remove.
void publish(const std::filesystem::path& tmp, const std::filesystem::path& path, std::string_view op);

// Writes `bytes` to tmp_path(path) and publishes it as `path`. On failure the tmp file is
// removed and a previous file at `path` is intact.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes, std::string_view op);

}  // namespace ternion::io

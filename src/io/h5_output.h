// An HDF5 file written through a driver that keeps disk errors away from HDF5.
//
//   io::h5::OutputFile out(path, "checkpoint");   // creates (truncates) path
//   ... H5Dcreate2(out.get(), ...), H5Dwrite ...; out.check();   // stop early on a full disk
//   out.close();                                  // throws if any write failed
//
// Why: HDF5 1.10 cannot close a file whose writes failed (ENOSPC, EFBIG). The failed flush
// leaves its metadata cache inconsistent, H5Fclose fails, the identifier stays registered
// over freed state, and the library crashes in H5F__close_cb when the process exits. This
// driver (POSIX pread/pwrite, like HDF5's sec2) records the first failing write and
// discards the writes after it, so HDF5 always closes the file cleanly and the error is
// reported by us, once, naming the file and the system's reason. The file itself is then
// garbage; callers write to a temporary path and remove it on failure.
#pragma once

#include <hdf5.h>

#include <memory>
#include <string>
#include <string_view>

#include "io/h5.h"

namespace ternion::io::h5 {

class OutputFile {
 public:
  // Creates `path`, replacing a file there. Throws ternion::Error("[op] cannot create
  // '<path>': <reason>").
  OutputFile(std::string path, std::string_view op);
  // Closes the file if still open; never throws (a failure is dropped).
  ~OutputFile();
  OutputFile(OutputFile&&) noexcept;
  OutputFile& operator=(OutputFile&&) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // The HDF5 file identifier. REQUIRES: not closed.
  hid_t get() const { return file_.get(); }
  const std::string& path() const { return path_; }

  // True once a write to the file has failed (every later write is discarded).
  bool failed() const;
  // Throws ternion::Error("[op] cannot write '<path>' at byte N: <strerror>") once a write
  // has failed.
  void check() const;
  // Closes the file (HDF5 writes what it still holds), then throws as check() does, or
  // when HDF5 reports a failure of its own. Closes even when it throws.
  void close();

  struct Status;  // the driver's record of the first failure

 private:
  std::string path_;
  std::string op_;
  std::unique_ptr<Status> status_;  // outlives file_: the driver writes to it until closed
  Handle file_;
};

}  // namespace ternion::io::h5

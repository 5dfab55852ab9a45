// RAII handles and error translation for the HDF5 C API, shared by every module that
// reads or writes HDF5 (data's token files, checkpoint's rank and weight files).
// HDF5 failures become ternion::Error("[op] <what> '<file>': <HDF5's own message>").
#pragma once

#include <hdf5.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ternion::io::h5 {

// Debian's HDF5 (the Open MPI build) is not built thread-safe, and the checkpoint writer
// runs on its own thread while the data loader reads: every HDF5 call in the process holds
// this lock (QuietErrors and Handle::reset take it). Recursive, so entry points nest.
// The one process-wide lock of the HDF5 library; nothing else in Ternion is global.
std::recursive_mutex& hdf5_mutex();

// Owns one HDF5 identifier and closes it with the matching H5?close. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  // Closes now; returns false when HDF5 reports a failure, with HDF5's reason in `*why`
  // when given (never printed: a destructor on an error path must not spill HDF5's error
  // stack). Never throws.
  bool reset(std::string* why = nullptr);

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// While alive, HDF5 does not print its error stack to stderr (H5Eset_auto2 with no handler);
// the previous handler is restored on destruction. Each public entry point that calls HDF5
// holds one, so failures reach the caller only as ternion::Error.
class QuietErrors {
 public:
  // Also holds hdf5_mutex() for its lifetime: keep one per HDF5 critical section.
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  std::lock_guard<std::recursive_mutex> lock_{hdf5_mutex()};  // first: held before any HDF5 call
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The most specific description on HDF5's default error stack, on one line; clears the stack.
// Must be called right after the failing call (every HDF5 API call resets the stack).
std::string error_stack();

// Throws ternion::Error("[op] <what> '<path>': <error_stack()>") when id < 0, else returns id.
hid_t check_id(hid_t id, std::string_view op, std::string_view what, std::string_view path);
// Same for herr_t / htri_t results (negative is failure); returns rc.
int check_rc(int rc, std::string_view op, std::string_view what, std::string_view path);

// The value of string attribute `name` of object `obj`, whatever its storage: fixed or
// variable length, ASCII or UTF-8, NUL-terminated, NUL- or space-padded (h5py writes a str as
// variable-length UTF-8, numpy bytes as fixed-length ASCII). The value is returned as stored
// (UTF-8 bytes are not re-encoded), without its padding. nullopt when there is no such
// attribute. Throws ternion::Error("[op] ... '<path>' ...") when it is not one string or
// cannot be read.
std::optional<std::string> read_string_attribute(hid_t obj, const char* name, std::string_view op,
                                                 std::string_view path);

// "1.10.8": the HDF5 library this process runs with.
std::string library_version();

}  // namespace ternion::io::h5

#include "io/h5.h"

#include <vector>

#include "core/error.h"

namespace ternion::io::h5 {
namespace {

herr_t collect(unsigned /*n*/, const H5E_error2_t* err, void* client) {
  auto* out = static_cast<std::vector<std::string>*>(client);
  if (err->desc != nullptr && err->desc[0] != '\0' && out->empty()) out->emplace_back(err->desc);
  return 0;
}

}  // namespace

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mu;
  return mu;
}

std::string error_stack() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "HDF5 call failed";
  std::string out = messages[0];  // the most specific; the rest repeat it in general terms
  for (char& c : out) {
    if (c == '\n') c = ' ';
  }
  return out;
}

hid_t check_id(hid_t id, std::string_view op, std::string_view what, std::string_view path) {
  if (id < 0) fail(op, str_cat(what, " '", path, "': ", error_stack()));
  return id;
}

int check_rc(int rc, std::string_view op, std::string_view what, std::string_view path) {
  if (rc < 0) fail(op, str_cat(what, " '", path, "': ", error_stack()));
  return rc;
}

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return str_cat(major, ".", minor, ".", release);
}

}  // namespace ternion::io::h5

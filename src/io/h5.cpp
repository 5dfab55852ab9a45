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

bool Handle::reset(std::string* why) {
  if (id_ < 0) return true;
  QuietErrors quiet;
  if (closer_(std::exchange(id_, H5I_INVALID_HID)) >= 0) return true;
  if (why != nullptr) *why = error_stack();  // now: restoring the handler clears the stack
  return false;
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

std::optional<std::string> read_string_attribute(hid_t obj, const char* name, std::string_view op,
                                                 std::string_view path) {
  QuietErrors quiet;
  const std::string what = str_cat("attribute '", name, "' of");
  if (check_rc(H5Aexists(obj, name), op, "cannot query " + what, path) == 0) return std::nullopt;
  Handle attr(check_id(H5Aopen(obj, name, H5P_DEFAULT), op, "cannot open " + what, path), H5Aclose);
  Handle type(check_id(H5Aget_type(attr.get()), op, "cannot read the type of " + what, path), H5Tclose);
  Handle space(check_id(H5Aget_space(attr.get()), op, "cannot read the shape of " + what, path), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(op, str_cat(what, " '", path, "' is not a single string"));
  // The memory type keeps the file's character set: HDF5 converts between fixed and
  // variable length, but not between ASCII and UTF-8 ("no appropriate function for
  // conversion path").
  const H5T_cset_t cset = H5Tget_cset(type.get());
  const htri_t variable = check_rc(H5Tis_variable_str(type.get()), op, "cannot read the type of " + what, path);
  if (variable > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    check_rc(H5Tset_size(mem.get(), H5T_VARIABLE), op, "cannot read " + what, path);
    check_rc(H5Tset_cset(mem.get(), cset), op, "cannot read " + what, path);
    char* value = nullptr;
    check_rc(H5Aread(attr.get(), mem.get(), &value), op, "cannot read " + what, path);
    std::string out = value != nullptr ? value : "";
    H5free_memory(value);
    return out;
  }
  // Fixed length: read the bytes as stored, then drop the padding.
  const size_t n = H5Tget_size(type.get());
  const H5T_str_t pad = H5Tget_strpad(type.get());
  std::string out(n, '\0');
  if (n > 0) check_rc(H5Aread(attr.get(), type.get(), out.data()), op, "cannot read " + what, path);
  if (pad == H5T_STR_SPACEPAD) {
    out.erase(out.find_last_not_of(' ') + 1);  // npos + 1 == 0: all spaces
  } else if (const size_t nul = out.find('\0'); nul != std::string::npos) {
    out.resize(nul);
  }
  return out;
}

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return str_cat(major, ".", minor, ".", release);
}

}  // namespace ternion::io::h5

// OutputFile and its virtual file driver ("ternion_output"): HDF5's sec2 semantics, except
// that a failing write or truncate is recorded in OutputFile::Status and reported to HDF5 as
// a success (later writes are skipped). See h5_output.h for why.
#include "io/h5_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/error.h"

namespace ternion::io::h5 {

struct OutputFile::Status {
  int error = 0;             // errno of the first failed write, truncate or close; 0 if none
  haddr_t error_at = 0;      // the file offset it failed at
  int open_error = 0;        // errno when the file could not be created
};

namespace {

// H5FD_class_t (the driver's table of callbacks) is the 1.10 layout; 1.14 changed it.
#if H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10
#define TERNION_OUTPUT_DRIVER 1
#endif

#ifdef TERNION_OUTPUT_DRIVER

using Status = OutputFile::Status;

// The driver's per-fapl information: where the file's Status lives.
struct DriverInfo {
  Status* status = nullptr;
};

struct DriverFile {
  H5FD_t pub;  // first, as HDF5 requires: the library casts between the two
  int fd = -1;
  haddr_t eoa = 0;
  haddr_t eof = 0;
  dev_t device = 0;
  ino_t inode = 0;
  Status* status = nullptr;
};

constexpr haddr_t kMaxAddr = (haddr_t{1} << (8 * sizeof(off_t) - 1)) - 1;

DriverFile* cast(H5FD_t* f) { return reinterpret_cast<DriverFile*>(f); }
const DriverFile* cast(const H5FD_t* f) { return reinterpret_cast<const DriverFile*>(f); }

void record(Status* s, int err, haddr_t at) {
  if (s != nullptr && s->error == 0) {
    s->error = err;
    s->error_at = at;
  }
}

herr_t push_error(H5E_major_t major, H5E_minor_t minor, const char* what, int err) {
  H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, major, minor, "%s: %s", what,
           std::strerror(err));
  return -1;
}

void* driver_fapl_copy(const void* info) { return new (std::nothrow) DriverInfo(*static_cast<const DriverInfo*>(info)); }
herr_t driver_fapl_free(void* info) {
  delete static_cast<DriverInfo*>(info);
  return 0;
}
void* driver_fapl_get(H5FD_t* f) { return new (std::nothrow) DriverInfo{cast(f)->status}; }

H5FD_t* driver_open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if (name == nullptr || *name == '\0' || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > kMaxAddr) {
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_BADVALUE,
             "invalid file name or maxaddr");
    return nullptr;
  }
  const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
  Status* status = info != nullptr ? info->status : nullptr;
  int o_flags = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
  if (flags & H5F_ACC_TRUNC) o_flags |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) o_flags |= O_CREAT;
  if (flags & H5F_ACC_EXCL) o_flags |= O_EXCL;
  const int fd = ::open(name, o_flags | O_CLOEXEC, 0666);
  struct stat sb {};
  if (fd < 0 || ::fstat(fd, &sb) < 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (status != nullptr) status->open_error = err;
    push_error(H5E_FILE, H5E_CANTOPENFILE, "unable to open file", err);
    return nullptr;
  }
  auto* f = new (std::nothrow) DriverFile();
  if (f == nullptr) {
    ::close(fd);
    push_error(H5E_RESOURCE, H5E_NOSPACE, "unable to allocate the file struct", ENOMEM);
    return nullptr;
  }
  f->fd = fd;
  f->eof = static_cast<haddr_t>(sb.st_size);
  f->device = sb.st_dev;
  f->inode = sb.st_ino;
  f->status = status;
  return &f->pub;
}

herr_t driver_close(H5FD_t* file) {
  DriverFile* f = cast(file);
  if (::close(f->fd) < 0) record(f->status, errno, f->eof);  // e.g. a delayed write error on NFS
  delete f;
  return 0;
}

int driver_cmp(const H5FD_t* a, const H5FD_t* b) {
  const DriverFile* f1 = cast(a);
  const DriverFile* f2 = cast(b);
  if (f1->device != f2->device) return f1->device < f2->device ? -1 : 1;
  if (f1->inode != f2->inode) return f1->inode < f2->inode ? -1 : 1;
  return 0;
}

herr_t driver_query(const H5FD_t* /*file*/, unsigned long* flags) {
  if (flags != nullptr) {
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE;
  }
  return 0;
}

haddr_t driver_get_eoa(const H5FD_t* file, H5FD_mem_t /*type*/) { return cast(file)->eoa; }
herr_t driver_set_eoa(H5FD_t* file, H5FD_mem_t /*type*/, haddr_t addr) {
  cast(file)->eoa = addr;
  return 0;
}
haddr_t driver_get_eof(const H5FD_t* file, H5FD_mem_t /*type*/) { return cast(file)->eof; }
herr_t driver_get_handle(H5FD_t* file, hid_t /*fapl*/, void** handle) {
  *handle = &cast(file)->fd;
  return 0;
}

herr_t driver_read(H5FD_t* file, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t addr, size_t size, void* buf) {
  DriverFile* f = cast(file);
  if (addr > kMaxAddr || size > kMaxAddr - addr) {
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_OVERFLOW,
             "read beyond the largest file address");
    return -1;
  }
  auto* out = static_cast<unsigned char*>(buf);
  while (size > 0) {
    const ssize_t n = ::pread(f->fd, out, size, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return push_error(H5E_IO, H5E_READERROR, "file read failed", errno);
    if (n == 0) {  // past the end of the file: HDF5 expects zeros
      std::memset(out, 0, size);
      break;
    }
    out += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  return 0;
}

herr_t driver_write(H5FD_t* file, H5FD_mem_t /*type*/, hid_t /*dxpl*/, haddr_t addr, size_t size, const void* buf) {
  DriverFile* f = cast(file);
  if (addr > kMaxAddr || size > kMaxAddr - addr) {
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_OVERFLOW,
             "write beyond the largest file address");
    return -1;
  }
  const haddr_t end = addr + size;
  const auto* in = static_cast<const unsigned char*>(buf);
  // After a failure the file is lost: skip the system calls, keep HDF5's view consistent.
  while (size > 0 && (f->status == nullptr || f->status->error == 0)) {
    const ssize_t n = ::pwrite(f->fd, in, size, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      record(f->status, n < 0 ? errno : EIO, addr);
      break;
    }
    in += n;
    addr += static_cast<haddr_t>(n);
    size -= static_cast<size_t>(n);
  }
  if (end > f->eof) f->eof = end;
  return 0;
}

herr_t driver_truncate(H5FD_t* file, hid_t /*dxpl*/, hbool_t /*closing*/) {
  DriverFile* f = cast(file);
  if (f->eoa == f->eof) return 0;
  if ((f->status == nullptr || f->status->error == 0) && ::ftruncate(f->fd, static_cast<off_t>(f->eoa)) < 0)
    record(f->status, errno, f->eoa);
  f->eof = f->eoa;
  return 0;
}

const H5FD_class_t kDriver = {
    .name = "ternion_output",
    .maxaddr = kMaxAddr,
    .fc_degree = H5F_CLOSE_WEAK,
    .terminate = nullptr,
    .sb_size = nullptr,
    .sb_encode = nullptr,
    .sb_decode = nullptr,
    .fapl_size = sizeof(DriverInfo),
    .fapl_get = driver_fapl_get,
    .fapl_copy = driver_fapl_copy,
    .fapl_free = driver_fapl_free,
    .dxpl_size = 0,
    .dxpl_copy = nullptr,
    .dxpl_free = nullptr,
    .open = driver_open,
    .close = driver_close,
    .cmp = driver_cmp,
    .query = driver_query,
    .get_type_map = nullptr,
    .alloc = nullptr,
    .free = nullptr,
    .get_eoa = driver_get_eoa,
    .set_eoa = driver_set_eoa,
    .get_eof = driver_get_eof,
    .get_handle = driver_get_handle,
    .read = driver_read,
    .write = driver_write,
    .flush = nullptr,
    .truncate = driver_truncate,
    .lock = nullptr,
    .unlock = nullptr,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

// Registered on first use (under hdf5_mutex); the library closes it at shutdown.
hid_t driver_id() {
  static hid_t id = H5I_INVALID_HID;
  if (id < 0 || H5Iis_valid(id) <= 0) id = H5FDregister(&kDriver);
  return id;
}

// A file access list that selects the driver, reporting to `status`.
Handle access_list(Status* status, std::string_view op, const std::string& path) {
  Handle fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), op, "cannot create", path), H5Pclose);
  const DriverInfo info{status};
  check_rc(H5Pset_driver(fapl.get(), check_id(driver_id(), op, "cannot create", path), &info), op,
           "cannot create", path);
  return fapl;
}

#else  // another HDF5: its own sec2 driver (write errors reach HDF5 there)

Handle access_list(OutputFile::Status* /*status*/, std::string_view op, const std::string& path) {
  return Handle(check_id(H5Pcreate(H5P_FILE_ACCESS), op, "cannot create", path), H5Pclose);
}

#endif

std::string describe(int err) {
  std::string why = std::strerror(err);
  if (err == EFBIG) why += " (over the file size limit: ulimit -f, or the filesystem's)";
  return why;
}

}  // namespace

OutputFile::OutputFile(std::string path, std::string_view op)
    : path_(std::move(path)), op_(op), status_(std::make_unique<Status>()) {
  QuietErrors quiet;
  Handle fapl = access_list(status_.get(), op_, path_);
  const hid_t id = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (id < 0 && status_->open_error != 0) {
    H5Eclear2(H5E_DEFAULT);
    fail(op_, str_cat("cannot create '", path_, "': ", describe(status_->open_error)));
  }
  file_ = Handle(check_id(id, op_, "cannot create", path_), H5Fclose);
}

OutputFile::~OutputFile() = default;  // file_ closes first (declared last)
OutputFile::OutputFile(OutputFile&&) noexcept = default;
OutputFile& OutputFile::operator=(OutputFile&&) noexcept = default;

bool OutputFile::failed() const {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  return status_ && status_->error != 0;
}

void OutputFile::check() const {
  if (!failed()) return;
  fail(op_, str_cat("cannot write '", path_, "' at byte ", status_->error_at, ": ", describe(status_->error)));
}

void OutputFile::close() {
  std::string why;
  const bool closed = file_.reset(&why);
  check();
  TN_CHECK(closed, op_, "cannot close '", path_, "': ", why);
}

}  // namespace ternion::io::h5

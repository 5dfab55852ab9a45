// Tensor: a shared handle to (storage, shape, strides, offset, dtype). Copies of a Tensor
// alias the same data; views (view, transpose, slice) alias the same storage.
// Autograd state hangs off the impl as an opaque AutogradMeta owned by src/autograd,
// so the core knows nothing of graphs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace ternion {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

namespace autograd { struct AutogradMeta; }

// Owns one allocation of a device; returns it to the allocator when the last view dies.
struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  // ZeRO-3's parameters and gradient buckets: release() returns the allocation but keeps
  // this object, so every view of it (a parameter, a tensor a graph saved) stays valid and
  // sees the data again after materialize() allocates it anew (contents undefined until
  // written). Reading a released storage's data throws.
  void release();
  void materialize();
  bool resident() const { return !released; }
  void* data = nullptr;
  bool released = false;
  size_t nbytes = 0;
  Device device;
  Allocator* allocator = nullptr;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  std::shared_ptr<autograd::AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. Contents of empty() are uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor scalar(double value, DType dtype = DType::f32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int ndim() const { return static_cast<int>(impl().shape.size()); }
  int64_t size(int dim) const;  // negative dims count from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage ? impl().storage->device : Device::cpu(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  std::string str() const;  // "f32[2, 3]"

  // Pointer to the first element. REQUIRES (data<T>): T matches dtype().
  void* raw_data() const;
  template <typename T>
  T* data() const {
    TN_CHECK(dtype_of<T>() == dtype(), "data", "requested ", dtype_name(dtype_of<T>()),
             " pointer of a ", str(), " tensor");
    return static_cast<T*>(raw_data());
  }
  template <typename T>
  std::vector<T> to_vector() const;  // copies to host, contiguous
  double item() const;               // REQUIRES: numel() == 1

  // Views (share storage). view() needs a contiguous tensor; one dim may be -1.
  Tensor view(const Shape& shape) const;
  Tensor transpose(int dim0, int dim1) const;
  Tensor slice(int dim, int64_t start, int64_t end) const;
  Tensor select(int dim, int64_t index) const;  // drops `dim`

  // Copies.
  Tensor contiguous() const;  // this when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  void copy_(const Tensor& src);  // same shape; converts dtype; any devices
  void fill_(double value);
  void zero_();

  // Identity of the underlying impl (for graph bookkeeping and tests).
  TensorImpl* impl_ptr() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_shared() const { return impl_; }

 private:
  TensorImpl& impl() const;
  std::shared_ptr<TensorImpl> impl_;
};

Shape contiguous_strides(const Shape& shape);
// Normalises a possibly negative dim against ndim; throws naming `op` when out of range.
int wrap_dim(int dim, int ndim, std::string_view op);

}  // namespace ternion

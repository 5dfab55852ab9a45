#include "core/tensor.h"

#include <cstring>


#include "core/cuda_runtime.h"

namespace ternion {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

int wrap_dim(int dim, int ndim, std::string_view op) {
  const int d = dim < 0 ? dim + ndim : dim;
  TN_CHECK(d >= 0 && d < ndim, op, "dim ", dim, " out of range for a ", ndim, "-d tensor");
  return d;
}

Storage::Storage(size_t n, Device dev) : nbytes(n), device(dev), allocator(&allocator_for(dev)) {
  data = allocator->allocate(nbytes);
}

Storage::~Storage() {
  if (!released) allocator->deallocate(data, nbytes);
}

void Storage::release() {
  if (released) return;
  allocator->deallocate(data, nbytes);
  data = nullptr;
  released = true;
}

void Storage::materialize() {
  if (!released) return;
  data = allocator->allocate(nbytes);
  released = false;
}

TensorImpl& Tensor::impl() const {
  TN_CHECK(impl_, "tensor", "use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) TN_CHECK(d >= 0, "empty", "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, Device::cpu());
  t.fill_(value);
  return device.is_cpu() ? t : t.to(device);
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  TN_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector", values.size(),
           " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

int64_t Tensor::size(int dim) const { return shape()[wrap_dim(dim, ndim(), "size")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return str_cat(dtype_name(dtype()), shape_str(shape()), device().is_cpu() ? "" : "@",
                      device().is_cpu() ? "" : device().str());
}

void* Tensor::raw_data() const {
  auto& im = impl();
  TN_CHECK(!im.storage->released, "tensor", "use of a released tensor ", shape_str(im.shape),
           " (a ZeRO-3 parameter outside its gather)");
  return static_cast<char*>(im.storage->data) + im.offset * static_cast<int64_t>(dtype_size(im.dtype));
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(dtype_of<T>()).contiguous();
  std::vector<T> out(static_cast<size_t>(c.numel()));
  if (!out.empty()) std::memcpy(out.data(), c.raw_data(), out.size() * sizeof(T));
  return out;
}

double Tensor::item() const {
  TN_CHECK(numel() == 1, "item", "needs one element, got ", str());
  return to_vector<double>()[0];
}

Tensor Tensor::view(const Shape& new_shape) const {
  TN_CHECK(is_contiguous(), "view", "needs a contiguous tensor, got ", str(), " with strides ",
           shape_str(strides()));
  Shape s = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      TN_CHECK(infer < 0, "view", "more than one -1 in ", shape_str(new_shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    TN_CHECK(known != 0 && numel() % known == 0, "view", "cannot view ", str(), " as ",
             shape_str(new_shape));
    s[infer] = numel() / known;
  }
  TN_CHECK(shape_numel(s) == numel(), "view", "cannot view ", str(), " as ", shape_str(new_shape));
  auto im = std::make_shared<TensorImpl>(impl());
  im->autograd.reset();
  im->shape = s;
  im->strides = contiguous_strides(s);
  return Tensor(std::move(im));
}

Tensor Tensor::transpose(int dim0, int dim1) const {
  const int a = wrap_dim(dim0, ndim(), "transpose"), b = wrap_dim(dim1, ndim(), "transpose");
  auto im = std::make_shared<TensorImpl>(impl());
  im->autograd.reset();
  std::swap(im->shape[a], im->shape[b]);
  std::swap(im->strides[a], im->strides[b]);
  return Tensor(std::move(im));
}

Tensor Tensor::slice(int dim, int64_t start, int64_t end) const {
  const int d = wrap_dim(dim, ndim(), "slice");
  TN_CHECK(0 <= start && start <= end && end <= shape()[d], "slice", "range [", start, ", ", end,
           ") out of bounds for dim ", d, " of ", str());
  auto im = std::make_shared<TensorImpl>(impl());
  im->autograd.reset();
  im->offset += start * im->strides[d];
  im->shape[d] = end - start;
  return Tensor(std::move(im));
}

Tensor Tensor::select(int dim, int64_t index) const {
  const int d = wrap_dim(dim, ndim(), "select");
  Tensor s = slice(d, index, index + 1);
  s.impl_->shape.erase(s.impl_->shape.begin() + d);
  s.impl_->strides.erase(s.impl_->strides.begin() + d);
  return s;
}

namespace {

// Copies between two strided CPU layouts of the same shape; elem is the element size in
// bytes. Runs of the innermost dim that are contiguous on both sides move with memcpy.
void strided_copy(char* dst, const Shape& dst_strides, const char* src, const Shape& src_strides,
                  const Shape& shape, size_t elem) {
  const int nd = static_cast<int>(shape.size());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  if (nd == 0) {
    std::memcpy(dst, src, elem);
    return;
  }
  const int64_t e = static_cast<int64_t>(elem);
  std::vector<int64_t> idx(nd, 0);
  const int64_t inner = shape[nd - 1], ss = src_strides[nd - 1], ds = dst_strides[nd - 1];
  for (int64_t done = 0; done < n; done += inner) {
    int64_t so = 0, doff = 0;
    for (int i = 0; i < nd - 1; ++i) {
      so += idx[i] * src_strides[i];
      doff += idx[i] * dst_strides[i];
    }
    const char* s = src + so * e;
    char* d = dst + doff * e;
    if (ss == 1 && ds == 1) {
      std::memcpy(d, s, inner * elem);
    } else {
      for (int64_t j = 0; j < inner; ++j) std::memcpy(d + j * ds * e, s + j * ss * e, elem);
    }
    for (int i = nd - 2; i >= 0; --i) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
}

template <typename To, typename From>
void convert(To* dst, const From* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) {
      dst[i] = To(static_cast<float>(src[i]));
    } else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) {
      dst[i] = To(static_cast<float>(src[i]));
    } else {
      dst[i] = static_cast<To>(src[i]);
    }
  }
}

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = empty(shape(), dtype(), device());
  if (device().is_cuda()) {
    cuda_strided_copy(out.raw_data(), out.strides(), raw_data(), strides(), shape(), dtype_size(dtype()), device());
    return out;
  }
  strided_copy(static_cast<char*>(out.raw_data()), out.strides(),
               static_cast<const char*>(raw_data()), strides(), shape(), dtype_size(dtype()));
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor out = empty(shape(), dtype(), dev);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& src) {
  TN_CHECK(src.shape() == shape(), "copy_", "shape mismatch: destination ", str(), ", source ",
           src.str());
  if (numel() == 0) return;
  if (!device().is_cpu() || !src.device().is_cpu()) {
    TN_CHECK(src.dtype() == dtype(), "copy_", "device copies do not convert dtype: ", src.str(),
             " -> ", str());
    if (device() == src.device() && (!is_contiguous() || !src.is_contiguous())) {  // one GPU
      cuda_strided_copy(raw_data(), strides(), src.raw_data(), src.strides(), shape(), dtype_size(dtype()),
                        device());
      return;
    }
    TN_CHECK(is_contiguous(), "copy_", "device copies need a contiguous destination, got ", str());
    Tensor s = src.contiguous();
    TN_CHECK(s.is_contiguous(), "copy_", "non-contiguous device source ", src.str());
    cuda_copy_bytes(raw_data(), device(), s.raw_data(), s.device(), nbytes());
    return;
  }
  if (src.dtype() != dtype()) {
    if (!is_contiguous()) {  // convert into a contiguous temporary, then scatter
      copy_(src.to(dtype()));
      return;
    }
    Tensor sc = src.contiguous();
    dispatch_dtype(dtype(), [&](auto to_tag) {
      using To = decltype(to_tag);
      dispatch_dtype(sc.dtype(), [&](auto from_tag) {
        using From = decltype(from_tag);
        convert(static_cast<To*>(raw_data()), static_cast<const From*>(sc.raw_data()), numel());
      });
    });
    return;
  }
  if (is_contiguous() && src.is_contiguous()) {
    if (src.raw_data() != raw_data()) std::memmove(raw_data(), src.raw_data(), nbytes());
    return;
  }
  strided_copy(static_cast<char*>(raw_data()), strides(), static_cast<const char*>(src.raw_data()),
               src.strides(), shape(), dtype_size(dtype()));
}

void Tensor::fill_(double value) {
  TN_CHECK(is_contiguous(), "fill_", "needs a contiguous tensor, got ", str());
  if (!device().is_cpu()) {
    Tensor host = full(shape(), value, dtype());
    copy_(host);
    return;
  }
  dispatch_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
      v = T(static_cast<float>(value));
    } else {
      v = static_cast<T>(value);
    }
    T* p = static_cast<T*>(raw_data());
    for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
  });
}

void Tensor::zero_() {
  TN_CHECK(is_contiguous(), "zero_", "needs a contiguous tensor, got ", str());
  if (device().is_cpu()) {
    if (numel()) std::memset(raw_data(), 0, nbytes());
  } else {
    cuda_zero_bytes(raw_data(), device(), nbytes());
  }
}

#define TN_INSTANTIATE(T)                                                         \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&); \
  template std::vector<T> Tensor::to_vector<T>() const;
TN_INSTANTIATE(float)
TN_INSTANTIATE(double)
TN_INSTANTIATE(int32_t)
TN_INSTANTIATE(int64_t)
TN_INSTANTIATE(uint16_t)
TN_INSTANTIATE(bf16)
TN_INSTANTIATE(f16)
#undef TN_INSTANTIATE

}  // namespace ternion

#include "model/parameter.h"

#include "autograd/autograd.h"
#include "core/rng.h"

namespace ternion::model {

namespace {

bool overlap(const Box& a, const Box& b) {
  for (size_t d = 0; d < a.shape.size(); ++d)
    if (a.offsets[d] + a.shape[d] <= b.offsets[d] || b.offsets[d] + b.shape[d] <= a.offsets[d]) return false;
  return true;
}

}  // namespace

Tensor box_view(const Tensor& t, const Box& b) {
  Tensor v = t;
  for (size_t d = 0; d < b.shape.size(); ++d)
    v = v.slice(static_cast<int>(d), b.offsets[d], b.offsets[d] + b.shape[d]);
  return v;
}

std::string box_str(const Box& b) {
  std::string s = "[";
  for (size_t d = 0; d < b.shape.size(); ++d) {
    if (d) s += ", ";
    s += std::to_string(b.offsets[d]) + ":" + std::to_string(b.offsets[d] + b.shape[d]);
  }
  return s + "]";
}

Tensor Parameter::part(size_t k) const {
  TN_CHECK(k < boxes.size(), "parameter", name, " has ", boxes.size(), " boxes, asked for box ", k);
  if (tensor.ndim() == 0) return tensor;
  const int64_t r = row_begin(k);
  return tensor.slice(0, r, r + boxes[k].shape[0]);
}

int64_t Parameter::row_begin(size_t k) const {
  int64_t r = 0;
  for (size_t i = 0; i < k; ++i) r += boxes[i].shape.empty() ? 1 : boxes[i].shape[0];
  return r;
}

bool Parameter::is_whole() const {
  return boxes.size() == 1 && boxes[0].shape == global_shape;
}

std::vector<Box> whole_box(const Shape& global_shape) {
  return {Box{Shape(global_shape.size(), 0), global_shape}};
}

Box range_box(const Shape& global_shape, int dim, int64_t begin, int64_t end) {
  Box b{Shape(global_shape.size(), 0), global_shape};
  b.offsets[dim] = begin;
  b.shape[dim] = end - begin;
  return b;
}

Parameter make_parameter(std::string name, Shape global_shape, std::vector<Box> boxes, Device device,
                         int64_t padding_rows) {
  TN_CHECK(!boxes.empty(), "parameter", name, ": no boxes");
  const size_t nd = global_shape.size();
  int64_t rows = 0;
  for (size_t k = 0; k < boxes.size(); ++k) {
    const Box& b = boxes[k];
    TN_CHECK(b.offsets.size() == nd && b.shape.size() == nd, "parameter", name, ": box ", k,
             " has rank ", b.shape.size(), " but the global shape is ", shape_str(global_shape));
    for (size_t d = 0; d < nd; ++d) {
      TN_CHECK(b.offsets[d] >= 0 && b.shape[d] >= 0 && b.offsets[d] + b.shape[d] <= global_shape[d], "parameter",
               name, ": box ", box_str(b), " lies outside the global shape ", shape_str(global_shape));
      TN_CHECK(d == 0 || b.shape[d] == boxes[0].shape[d], "parameter", name, ": box ", box_str(b),
               " does not stack on box ", box_str(boxes[0]), " (the trailing dims must be equal)");
    }
    for (size_t j = 0; j < k; ++j)
      TN_CHECK(nd == 0 || b.numel() == 0 || boxes[j].numel() == 0 || !overlap(b, boxes[j]), "parameter", name,
               ": boxes ", box_str(boxes[j]), " and ", box_str(b), " overlap");
    rows += nd ? b.shape[0] : 1;
  }
  TN_CHECK(nd > 0 || boxes.size() == 1, "parameter", name, ": a scalar has one box");
  TN_CHECK(padding_rows >= 0 && (nd > 0 || padding_rows == 0), "parameter", name, ": ", padding_rows,
           " padding rows");
  rows += padding_rows;
  Shape local = nd ? boxes[0].shape : Shape{};
  if (nd) local[0] = rows;
  Parameter p;
  p.name = std::move(name);
  // Padding rows are zero from the start, whatever fills the boxes later.
  p.tensor = padding_rows > 0 ? Tensor::zeros(local, DType::f32, device) : Tensor::empty(local, DType::f32, device);
  autograd::set_requires_grad(p.tensor);
  p.global_shape = std::move(global_shape);
  p.boxes = std::move(boxes);
  p.padding_rows = padding_rows;
  return p;
}

void init_parameter(Parameter& p, uint64_t seed) {
  const bool on_host = p.tensor.device().is_cpu();
  Tensor host = on_host ? p.tensor : Tensor::empty(p.tensor.shape(), p.tensor.dtype());
  if (p.init_std > 0) {
    if (p.padding_rows > 0) host.fill_(0.0);
    for (size_t k = 0; k < p.boxes.size(); ++k) {
      Tensor part = Tensor::empty(p.boxes[k].shape, host.dtype());
      init_normal(part, seed, p.name, 0.0, p.init_std, p.global_shape, p.boxes[k].offsets);
      const int64_t r = p.row_begin(k);
      Tensor dst = host.ndim() ? host.slice(0, r, r + p.boxes[k].shape[0]) : host;
      dst.copy_(part);
    }
  } else {
    host.fill_(p.init_value);
    if (p.padding_rows > 0) host.slice(0, host.size(0) - p.padding_rows, host.size(0)).fill_(0.0);
  }
  if (!on_host) p.tensor.copy_(host);
}

void load_from_full(Parameter& p, const Tensor& full) {
  TN_CHECK(full.shape() == p.global_shape, "parameter", p.name, ": a whole tensor of shape ", shape_str(p.global_shape),
           " is needed, got ", full.str());
  for (size_t k = 0; k < p.boxes.size(); ++k) {
    Tensor dst = p.part(k);
    dst.copy_(box_view(full, p.boxes[k]));
  }
}

void store_into_full(const Parameter& p, Tensor& full) {
  TN_CHECK(full.shape() == p.global_shape, "parameter", p.name, ": a whole tensor of shape ", shape_str(p.global_shape),
           " is needed, got ", full.str());
  for (size_t k = 0; k < p.boxes.size(); ++k) {
    Tensor dst = box_view(full, p.boxes[k]);
    dst.copy_(p.part(k));
  }
}

}  // namespace ternion::model

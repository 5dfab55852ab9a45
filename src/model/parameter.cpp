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
                         int64_t padding_rows, bool allocate) {
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
  p.local_shape = local;
  if (allocate) {
    // Padding rows are zero from the start, whatever fills the boxes later.
    p.tensor = padding_rows > 0 ? Tensor::zeros(local, DType::f32, device) : Tensor::empty(local, DType::f32, device);
    autograd::set_requires_grad(p.tensor);
  }
  p.global_shape = std::move(global_shape);
  p.boxes = std::move(boxes);
  p.padding_rows = padding_rows;
  return p;
}

namespace {

// [a, b) of a row-major block of `shape` (a <= b, both inside it) as contiguous boxes, offsets
// relative to the block; `base` is the flat index of the block's first element.
void decompose(const Shape& shape, int64_t a, int64_t b, int64_t base, const Shape& prefix,
               std::vector<FlatPiece>& out) {
  if (a >= b) return;
  const size_t nd = shape.size();
  if (nd == 0) {
    out.push_back({Box{prefix, Shape(prefix.size(), 1)}, base});
    return;
  }
  const Shape inner_shape(shape.begin() + 1, shape.end());
  const int64_t inner = shape_numel(inner_shape);
  const auto piece = [&](int64_t row0, int64_t rows) {  // whole rows [row0, row0 + rows)
    Box box;
    box.offsets = prefix;
    box.offsets.push_back(row0);
    box.offsets.insert(box.offsets.end(), inner_shape.size(), 0);
    box.shape = Shape(prefix.size(), 1);
    box.shape.push_back(rows);
    box.shape.insert(box.shape.end(), inner_shape.begin(), inner_shape.end());
    out.push_back({box, base + row0 * inner});
  };
  if (nd == 1) {
    Box box{prefix, Shape(prefix.size(), 1)};
    box.offsets.push_back(a);
    box.shape.push_back(b - a);
    out.push_back({box, base + a});
    return;
  }
  int64_t r0 = a / inner;
  const int64_t r1 = b / inner;  // rows [r0, r1) may be whole; row r1 partial when b % inner
  Shape row_prefix = prefix;
  row_prefix.push_back(r0);
  if (a % inner != 0 || r0 == r1) {  // a partial first row (or the range inside one row)
    const int64_t stop = r0 == r1 ? b - r0 * inner : inner;
    decompose(inner_shape, a - r0 * inner, stop, base + r0 * inner, row_prefix, out);
    if (r0 == r1) return;
    ++r0;
  }
  if (r1 > r0) piece(r0, r1 - r0);
  if (b % inner != 0) {
    row_prefix.back() = r1;
    decompose(inner_shape, 0, b - r1 * inner, base + r1 * inner, row_prefix, out);
  }
}

}  // namespace

std::vector<FlatPiece> flat_range_pieces(const Parameter& p, int64_t begin, int64_t end) {
  const int64_t n = p.tensor.numel();
  TN_CHECK(0 <= begin && begin <= end && end <= n, "parameter", p.name, ": elements [", begin, ", ", end,
           ") are not a range of its ", n);
  std::vector<FlatPiece> out;
  if (p.global_shape.empty()) {
    if (begin < end) out.push_back({p.boxes[0], 0});
    return out;
  }
  const int64_t inner = p.boxes[0].numel() / std::max<int64_t>(p.boxes[0].shape[0], 1);
  for (size_t k = 0; k < p.boxes.size(); ++k) {
    const Box& box = p.boxes[k];
    const int64_t first = p.row_begin(k) * inner, last = first + box.numel();
    const int64_t a = std::max(begin, first), b = std::min(end, last);
    if (a >= b) continue;
    std::vector<FlatPiece> local;
    decompose(box.shape, a - first, b - first, first, {}, local);
    for (FlatPiece& f : local) {  // box-relative to global
      for (size_t d = 0; d < f.box.offsets.size(); ++d) f.box.offsets[d] += box.offsets[d];
      out.push_back(std::move(f));
    }
  }
  return out;
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

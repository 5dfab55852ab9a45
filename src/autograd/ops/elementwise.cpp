// add, mul, scale, cast, gelu, dropout and the reductions sum, mean.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

// b broadcasts over a when its shape is a suffix of a's shape.
void check_broadcast(const Tensor& a, const Tensor& b, std::string_view op) {
  check_float(a, op, "a");
  check_float(b, op, "b");
  check_like(a, b, op);
  bool suffix = b.ndim() <= a.ndim();
  for (int i = 1; suffix && i <= b.ndim(); ++i) suffix = a.size(-i) == b.size(-i);
  TN_CHECK(suffix, op, "shapes do not broadcast: ", a.str(), " and ", b.str(),
           " (b's shape must equal a trailing part of a's)");
}

// [N,C] views of a and of b broadcast as [M,C] rows.
std::pair<Tensor, Tensor> as_rows(const Tensor& a, const Tensor& b) {
  const int64_t c = b.ndim() ? b.size(-1) : 1;
  const int64_t m = c ? b.numel() / c : 0;
  return {a.contiguous().view({c ? a.numel() / c : 0, c}), b.contiguous().view({m, c})};
}

// The gradient of a broadcast operand: summed over the broadcast rows.
Tensor reduce_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t c = shape.empty() ? 1 : shape.back();
  const int64_t m = c ? shape_numel(shape) / c : 0;
  Tensor out = Tensor::zeros({m, c}, g.dtype(), g.device());
  TN_KERNEL(sum_rows, g.device(), g.contiguous().view({c ? g.numel() / c : 0, c}), out);
  return out.view(shape);
}

class Add final : public Node {
 public:
  explicit Add(Shape b_shape) : b_shape_(std::move(b_shape)) {}
  std::string_view name() const override { return "Add"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {grads[0], next_edges()[1].node ? reduce_to(grads[0], b_shape_) : Tensor()};
  }

 private:
  Shape b_shape_;
};

class Mul final : public Node {
 public:
  Mul(const Tensor& a, const Tensor& b) {
    save(a);
    save(b);
  }
  std::string_view name() const override { return "Mul"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& a = saved(0);
    const Tensor& b = saved(1);
    const Tensor g = grads[0].contiguous();
    Tensor da, db;
    if (next_edges()[0].node) {
      auto [gr, br] = as_rows(g, b);
      da = Tensor::empty(a.shape(), a.dtype(), a.device());
      Tensor dav = da.view(gr.shape());
      TN_KERNEL(mul, a.device(), gr, br, dav);
    }
    if (next_edges()[1].node) {
      const int64_t n = a.numel();
      Tensor prod = Tensor::empty({1, n}, a.dtype(), a.device());
      TN_KERNEL(mul, a.device(), g.view({1, n}), a.view({1, n}), prod);
      prod = prod.view(a.shape());
      db = reduce_to(prod, b.shape());
    }
    return {da, db};
  }
};

class Scale final : public Node {
 public:
  explicit Scale(double s) : s_(s) {}
  std::string_view name() const override { return "Scale"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    Tensor g = grads[0].contiguous();
    Tensor dx = empty_like(g);
    TN_KERNEL(axpby, g.device(), s_, g, 0.0, Tensor(), dx);
    return {dx};
  }

 private:
  double s_;
};

// The gradient of a cast is the incoming gradient cast back to the input's dtype
// (overwrite); AccumulateGrad then adds it into the f32 master gradient.
class Cast final : public Node {
 public:
  explicit Cast(DType from) : from_(from) {}
  std::string_view name() const override { return "Cast"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    Tensor g = grads[0].contiguous();
    Tensor dx = Tensor::empty(g.shape(), from_, g.device());
    TN_KERNEL(cast, g.device(), g, dx);
    return {dx};
  }

 private:
  DType from_;
};

class Gelu final : public Node {
 public:
  explicit Gelu(const Tensor& x) { save(x); }
  std::string_view name() const override { return "Gelu"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& x = saved(0);
    Tensor dx = empty_like(x);
    TN_KERNEL(gelu_backward, x.device(), x, grads[0].contiguous(), dx);
    return {dx};
  }
};

class Dropout final : public Node {
 public:
  Dropout(double p, uint64_t key, uint64_t stream, uint64_t offset)
      : p_(p), key_(key), stream_(stream), offset_(offset) {}
  std::string_view name() const override { return "Dropout"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    Tensor g = grads[0].contiguous();
    Tensor dx = empty_like(g);
    TN_KERNEL(dropout, g.device(), g, p_, key_, stream_, offset_, dx);  // same mask and scale
    return {dx};
  }

 private:
  double p_;
  uint64_t key_, stream_, offset_;
};

class Sum final : public Node {
 public:
  Sum(Shape shape, double factor) : shape_(std::move(shape)), factor_(factor) {}
  std::string_view name() const override { return "Sum"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const double g = grads[0].item() * factor_;
    return {Tensor::full(shape_, g, grads[0].dtype(), grads[0].device())};
  }

 private:
  Shape shape_;
  double factor_;
};

Tensor reduce_all(const Tensor& x, double factor, std::string_view op) {
  check_float(x, op, "input");
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  TN_KERNEL(sum_all, x.device(), x.contiguous(), out);
  if (factor != 1.0) TN_KERNEL(axpby, x.device(), factor, out, 0.0, Tensor(), out);
  record<Sum>({x}, {out}, x.shape(), factor);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_broadcast(a, b, "add");
  auto [ar, br] = as_rows(a, b);
  Tensor out = empty_like(a);
  Tensor ov = out.view(ar.shape());
  TN_KERNEL(add, a.device(), ar, br, ov);
  record<Add>({a, b}, {out}, b.shape());
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_broadcast(a, b, "mul");
  auto [ar, br] = as_rows(a, b);
  Tensor out = empty_like(a);
  Tensor ov = out.view(ar.shape());
  TN_KERNEL(mul, a.device(), ar, br, ov);
  record<Mul>({a, b}, {out}, a.contiguous(), b.contiguous());
  return out;
}

Tensor scale(const Tensor& x, double s) {
  check_float(x, "scale", "input");
  Tensor out = empty_like(x);
  TN_KERNEL(axpby, x.device(), s, x.contiguous(), 0.0, Tensor(), out);
  record<Scale>({x}, {out}, s);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  check_float(x, "cast", "input");
  TN_CHECK(is_floating(dtype), "cast", "target dtype must be floating, got ", dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  TN_KERNEL(cast, x.device(), x.contiguous(), y);
  record<Cast>({x}, {y}, x.dtype());
  return y;
}

Tensor gelu(const Tensor& x) {
  check_float(x, "gelu", "input");
  Tensor xc = x.contiguous();
  Tensor y = empty_like(x);
  TN_KERNEL(gelu_forward, x.device(), xc, y);
  record<Gelu>({x}, {y}, xc);
  return y;
}

Tensor dropout(const Tensor& x, double p, uint64_t key, uint64_t stream, uint64_t offset) {
  check_float(x, "dropout", "input");
  TN_CHECK(p >= 0.0 && p < 1.0, "dropout", "p must be in [0, 1), got ", p);
  if (p == 0.0) return x;
  Tensor y = empty_like(x);
  TN_KERNEL(dropout, x.device(), x.contiguous(), p, key, stream, offset, y);
  record<Dropout>({x}, {y}, p, key, stream, offset);
  return y;
}

Tensor sum(const Tensor& x) { return reduce_all(x, 1.0, "sum"); }

Tensor mean(const Tensor& x) {
  TN_CHECK(x.numel() > 0, "mean", "mean of an empty tensor ", x.str());
  return reduce_all(x, 1.0 / static_cast<double>(x.numel()), "mean");
}

}  // namespace ternion::autograd

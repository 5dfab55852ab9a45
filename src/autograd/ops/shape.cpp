// reshape, transpose, contiguous, split, concat: layout ops whose backward moves the
// gradient back into the input's layout.
#include <numeric>

#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

class Reshape final : public Node {
 public:
  explicit Reshape(Shape in) : in_(std::move(in)) {}
  std::string_view name() const override { return "Reshape"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {grads[0].contiguous().view(in_)};
  }

 private:
  Shape in_;
};

class Transpose final : public Node {
 public:
  Transpose(int d0, int d1) : d0_(d0), d1_(d1) {}
  std::string_view name() const override { return "Transpose"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {grads[0].transpose(d0_, d1_)};
  }

 private:
  int d0_, d1_;
};

class Identity final : public Node {  // contiguous(): same values, new layout
 public:
  std::string_view name() const override { return "Contiguous"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override { return {grads[0]}; }
};

class BackwardHook final : public Node {
 public:
  explicit BackwardHook(std::function<void()> fn) : fn_(std::move(fn)) {}
  std::string_view name() const override { return "BackwardHook"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    fn_();
    return {grads[0]};
  }

 private:
  std::function<void()> fn_;
};

class Split final : public Node {
 public:
  explicit Split(int dim) : dim_(dim) {}
  std::string_view name() const override { return "Split"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    return {concat_raw(grads, dim_)};
  }
  static Tensor concat_raw(const std::vector<Tensor>& xs, int dim) {
    Shape shape = xs[0].shape();
    shape[dim] = 0;
    for (const Tensor& x : xs) shape[dim] += x.size(dim);
    Tensor out = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
    int64_t at = 0;
    for (const Tensor& x : xs) {
      Tensor dst = out.slice(dim, at, at + x.size(dim));
      dst.copy_(x);
      at += x.size(dim);
    }
    return out;
  }

 private:
  int dim_;
};

class Concat final : public Node {
 public:
  Concat(std::vector<int64_t> sizes, int dim) : sizes_(std::move(sizes)), dim_(dim) {}
  std::string_view name() const override { return "Concat"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    std::vector<Tensor> out;
    int64_t at = 0;
    for (int64_t s : sizes_) {
      out.push_back(grads[0].slice(dim_, at, at + s));
      at += s;
    }
    return out;
  }

 private:
  std::vector<int64_t> sizes_;
  int dim_;
};

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  TN_CHECK(x.defined(), "reshape", "input is undefined");
  Tensor y = detach(x.contiguous()).view(shape);
  record<Reshape>({x}, {y}, x.shape());
  return y;
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  TN_CHECK(x.defined(), "transpose", "input is undefined");
  const int a = wrap_dim(dim0, x.ndim(), "transpose"), b = wrap_dim(dim1, x.ndim(), "transpose");
  Tensor y = x.transpose(a, b);
  record<Transpose>({x}, {y}, a, b);
  return y;
}

Tensor contiguous(const Tensor& x) {
  TN_CHECK(x.defined(), "contiguous", "input is undefined");
  if (x.is_contiguous()) return x;
  Tensor y = x.contiguous();
  record<Identity>({x}, {y});
  return y;
}

Tensor backward_hook(const Tensor& x, std::function<void()> fn) {
  TN_CHECK(x.defined(), "backward_hook", "input is undefined");
  if (!needs_grad({x})) return x;
  Tensor y = detach(x);
  record<BackwardHook>({x}, {y}, std::move(fn));
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  TN_CHECK(x.defined(), "split", "input is undefined");
  const int d = wrap_dim(dim, x.ndim(), "split");
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  TN_CHECK(total == x.size(d), "split", "sizes sum to ", total, " but dim ", d, " of ", x.str(),
           " is ", x.size(d));
  std::vector<Tensor> outs;
  int64_t at = 0;
  for (int64_t s : sizes) {
    TN_CHECK(s >= 0, "split", "negative size ", s);
    outs.push_back(x.slice(d, at, at + s));
    at += s;
  }
  record<Split>({x}, outs, d);
  return outs;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  TN_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  const int d = wrap_dim(dim, xs[0].ndim(), "concat");
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) {
    TN_CHECK(x.defined(), "concat", "undefined input");
    check_like(xs[0], x, "concat");
    bool ok = x.ndim() == xs[0].ndim();
    for (int i = 0; ok && i < x.ndim(); ++i) ok = i == d || x.size(i) == xs[0].size(i);
    TN_CHECK(ok, "concat", "shapes differ outside dim ", d, ": ", xs[0].str(), " vs ", x.str());
    sizes.push_back(x.size(d));
  }
  Tensor out = Split::concat_raw(xs, d);
  record<Concat>(xs, {out}, sizes, d);
  return out;
}

}  // namespace ternion::autograd

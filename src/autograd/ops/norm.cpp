// layer_norm and softmax over the last dim.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

class LayerNorm final : public Node {
 public:
  LayerNorm(const Tensor& x2, const Tensor& w, const Tensor& mean, const Tensor& rstd, Shape shape)
      : shape_(std::move(shape)) {
    save(x2);
    save(w);
    save(mean);
    save(rstd);
  }
  std::string_view name() const override { return "LayerNorm"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& x = saved(0);
    const Tensor& w = saved(1);
    Tensor dx = empty_like(x), dw = zeros_like(w), db = zeros_like(w);
    TN_KERNEL(layernorm_backward, x.device(), x, w, saved(2), saved(3), rows(grads[0]), dx, dw, db);
    return {dx.view(shape_), dw, db};
  }

 private:
  Shape shape_;
};

class Softmax final : public Node {
 public:
  explicit Softmax(const Tensor& y2) { save(y2); }
  std::string_view name() const override { return "Softmax"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& y = saved(0);
    Tensor dx = empty_like(y);
    TN_KERNEL(softmax_backward, y.device(), y, rows(grads[0]), dx);
    return {dx.view(grads[0].shape())};
  }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  check_float(x, "layer_norm", "input");
  check_float(w, "layer_norm", "weight");
  check_float(b, "layer_norm", "bias");
  check_like(x, w, "layer_norm");
  check_like(x, b, "layer_norm");
  TN_CHECK(x.ndim() >= 1 && w.ndim() == 1 && b.ndim() == 1 && w.size(0) == x.size(-1) &&
               b.size(0) == x.size(-1),
           "layer_norm", "input ", x.str(), " needs weight and bias [", x.ndim() ? x.size(-1) : 0,
           "], got ", w.str(), " and ", b.str());
  TN_CHECK(eps > 0, "layer_norm", "eps must be positive, got ", eps);
  Tensor x2 = rows(x);
  Tensor y = Tensor::empty(x2.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({x2.size(0)}, stats_dtype(x.dtype()), x.device());
  Tensor rstd = Tensor::empty({x2.size(0)}, stats_dtype(x.dtype()), x.device());
  Tensor wc = w.contiguous();
  TN_KERNEL(layernorm_forward, x.device(), x2, wc, b.contiguous(), eps, y, mean, rstd);
  y = y.view(x.shape());
  record<LayerNorm>({x, w, b}, {y}, x2, wc, mean, rstd, x.shape());
  return y;
}

Tensor softmax(const Tensor& x) {
  check_float(x, "softmax", "input");
  TN_CHECK(x.ndim() >= 1, "softmax", "needs at least one dim, got ", x.str());
  Tensor x2 = rows(x);
  Tensor y2 = empty_like(x2);
  TN_KERNEL(softmax_forward, x.device(), x2, y2);
  Tensor y = y2.view(x.shape());
  record<Softmax>({x}, {y}, y2);
  return y;
}

}  // namespace ternion::autograd

// linear, matmul and embedding: the GEMM-shaped ops.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

Tensor as3d(const Tensor& t, int64_t batch) {
  return t.contiguous().view({batch, t.size(-2), t.size(-1)});
}

class Linear final : public Node {
 public:
  Linear(const Tensor& x2, const Tensor& w, bool has_bias) : has_bias_(has_bias) {
    save(x2);
    save(w);
  }
  std::string_view name() const override { return "Linear"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& x = saved(0);  // [N,K]
    const Tensor& w = saved(1);  // [Nout,K]
    Tensor dy = rows(grads[0]);  // [N,Nout]
    const Device dev = x.device();
    Tensor dx, dw, db;
    if (next_edges()[0].node) {
      dx = Tensor::empty(x.shape(), x.dtype(), dev);
      Tensor dx3 = dx.view({1, x.size(0), x.size(1)});
      TN_KERNEL(gemm, dev, dy.view({1, dy.size(0), dy.size(1)}), false, w.view({1, w.size(0), w.size(1)}),
                false, dx3, 1.0, 0.0);
      dx = dx.view(input_shape_);
    }
    if (next_edges()[1].node) {
      dw = Tensor::empty(w.shape(), w.dtype(), dev);
      Tensor dw3 = dw.view({1, w.size(0), w.size(1)});
      TN_KERNEL(gemm, dev, dy.view({1, dy.size(0), dy.size(1)}), true, x.view({1, x.size(0), x.size(1)}),
                false, dw3, 1.0, 0.0);
    }
    if (has_bias_ && next_edges()[2].node) {
      db = Tensor::zeros({1, w.size(0)}, w.dtype(), dev);
      TN_KERNEL(sum_rows, dev, dy, db);
      db = db.view({w.size(0)});
    }
    if (has_bias_) return {dx, dw, db};
    return {dx, dw};
  }
  Shape input_shape_;

 private:
  bool has_bias_;
};

class Matmul final : public Node {
 public:
  Matmul(const Tensor& a3, const Tensor& b3, Shape a_shape, Shape b_shape)
      : a_shape_(std::move(a_shape)), b_shape_(std::move(b_shape)) {
    save(a3);
    save(b3);
  }
  std::string_view name() const override { return "Matmul"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& a = saved(0);  // [Bt,M,K]
    const Tensor& b = saved(1);  // [Bt or 1,K,N]
    const Device dev = a.device();
    Tensor dc = grads[0].contiguous().view({a.size(0), a.size(1), b.size(2)});
    Tensor da, db;
    if (next_edges()[0].node) {
      da = Tensor::empty(a.shape(), a.dtype(), dev);
      TN_KERNEL(gemm, dev, dc, false, b, true, da, 1.0, 0.0);
      da = da.view(a_shape_);
    }
    if (next_edges()[1].node) {
      if (b.size(0) == a.size(0)) {
        db = Tensor::empty(b.shape(), b.dtype(), dev);
        TN_KERNEL(gemm, dev, a, true, dc, false, db, 1.0, 0.0);
      } else {  // shared b: sum over the batch as one GEMM over stacked rows
        db = Tensor::empty(b.shape(), b.dtype(), dev);
        TN_KERNEL(gemm, dev, a.view({1, a.size(0) * a.size(1), a.size(2)}), true,
                  dc.view({1, a.size(0) * a.size(1), b.size(2)}), false, db, 1.0, 0.0);
      }
      db = db.view(b_shape_);
    }
    return {da, db};
  }

 private:
  Shape a_shape_, b_shape_;
};

class Embedding final : public Node {
 public:
  Embedding(const Tensor& idx, const Tensor& w) : w_shape_(w.shape()), dtype_(w.dtype()) { save(idx); }
  std::string_view name() const override { return "Embedding"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& idx = saved(0);
    Tensor dw = Tensor::zeros(w_shape_, dtype_, idx.device());
    TN_KERNEL(embedding_backward, idx.device(), idx, rows(grads[0]), dw);
    return {Tensor(), dw};
  }

 private:
  Shape w_shape_;
  DType dtype_;
};

class VocabEmbedding final : public Node {
 public:
  VocabEmbedding(const Tensor& idx, const Tensor& w, int64_t begin, int64_t count, int64_t vocab)
      : w_shape_(w.shape()), dtype_(w.dtype()), begin_(begin), count_(count), vocab_(vocab) {
    save(idx);
  }
  std::string_view name() const override { return "VocabEmbedding"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& idx = saved(0);
    Tensor dw = Tensor::zeros(w_shape_, dtype_, idx.device());
    TN_KERNEL(vocab_embedding_backward, idx.device(), idx, rows(grads[0]), begin_, count_, vocab_, dw);
    return {Tensor(), dw};
  }

 private:
  Shape w_shape_;
  DType dtype_;
  int64_t begin_, count_, vocab_;
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_float(x, "linear", "input");
  check_float(w, "linear", "weight");
  check_like(x, w, "linear");
  TN_CHECK(w.ndim() == 2 && x.ndim() >= 1 && x.size(-1) == w.size(1), "linear", "input ", x.str(),
           " does not match weight ", w.str(), " (expected [..., ", w.ndim() == 2 ? w.size(1) : -1, "])");
  if (b.defined()) {
    check_like(x, b, "linear");
    TN_CHECK(b.ndim() == 1 && b.size(0) == w.size(0), "linear", "bias ", b.str(), " for weight ",
             w.str());
  }
  const Tensor x2 = rows(x);
  const Tensor wc = w.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  Tensor y = Tensor::empty({x2.size(0), w.size(0)}, x.dtype(), x.device());
  Tensor y3 = y.view({1, y.size(0), y.size(1)});
  TN_KERNEL(gemm, x.device(), x2.view({1, x2.size(0), x2.size(1)}), false,
            wc.view({1, w.size(0), w.size(1)}), true, y3, 1.0, 0.0);
  if (b.defined()) TN_KERNEL(add, x.device(), y, b.contiguous().view({1, w.size(0)}), y);
  y = y.view(out_shape);
  std::vector<Tensor> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  if (auto node = record<Linear>(inputs, {y}, x2, wc, b.defined())) node->input_shape_ = x.shape();
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float(a, "matmul", "a");
  check_float(b, "matmul", "b");
  check_like(a, b, "matmul");
  TN_CHECK(a.ndim() >= 2 && b.ndim() >= 2 && a.size(-1) == b.size(-2), "matmul",
           "inner dims differ: ", a.str(), " @ ", b.str());
  const bool shared_b = b.ndim() == 2;
  TN_CHECK(shared_b || (a.ndim() == b.ndim() &&
                        std::equal(a.shape().begin(), a.shape().end() - 2, b.shape().begin())),
           "matmul", "batch dims differ: ", a.str(), " @ ", b.str());
  const int64_t bm = shape_numel(Shape(a.shape().begin(), a.shape().end() - 2));
  Tensor a3 = as3d(a, bm);
  Tensor b3 = as3d(b, shared_b ? 1 : bm);
  Shape out_shape = a.shape();
  out_shape.back() = b.size(-1);
  Tensor c = Tensor::empty({bm, a.size(-2), b.size(-1)}, a.dtype(), a.device());
  TN_KERNEL(gemm, a.device(), a3, false, b3, false, c, 1.0, 0.0);
  c = c.view(out_shape);
  record<Matmul>({a, b}, {c}, a3, b3, a.shape(), b.shape());
  return c;
}

Tensor embedding(const Tensor& idx, const Tensor& weight) {
  check_index(idx, "embedding", "indices");
  check_float(weight, "embedding", "weight");
  TN_CHECK(weight.ndim() == 2, "embedding", "weight must be [V, C], got ", weight.str());
  TN_CHECK(idx.device() == weight.device(), "embedding", "device mismatch: ", idx.str(), " vs ",
           weight.str());
  Tensor flat = idx.contiguous().view({idx.numel()});
  Tensor out = Tensor::empty({idx.numel(), weight.size(1)}, weight.dtype(), weight.device());
  TN_KERNEL(embedding_forward, weight.device(), flat, weight.contiguous(), out);
  Shape out_shape = idx.shape();
  out_shape.push_back(weight.size(1));
  out = out.view(out_shape);
  record<Embedding>({idx, weight}, {out}, flat, weight);
  return out;
}

Tensor vocab_embedding(const Tensor& idx, const Tensor& weight, int64_t begin, int64_t count, int64_t vocab) {
  check_index(idx, "vocab_embedding", "indices");
  check_float(weight, "vocab_embedding", "weight");
  TN_CHECK(weight.ndim() == 2, "vocab_embedding", "weight must be [Vl, C], got ", weight.str());
  TN_CHECK(begin >= 0 && count >= 0 && count <= weight.size(0) && begin + count <= vocab, "vocab_embedding",
           "rows [", begin, ", ", begin + count, ") of a vocabulary of ", vocab, " do not fit the table ",
           weight.str());
  TN_CHECK(idx.device() == weight.device(), "vocab_embedding", "device mismatch: ", idx.str(), " vs ",
           weight.str());
  Tensor flat = idx.contiguous().view({idx.numel()});
  Tensor out = Tensor::empty({idx.numel(), weight.size(1)}, weight.dtype(), weight.device());
  TN_KERNEL(vocab_embedding_forward, weight.device(), flat, weight.contiguous(), begin, count, vocab, out);
  Shape out_shape = idx.shape();
  out_shape.push_back(weight.size(1));
  out = out.view(out_shape);
  record<VocabEmbedding>({idx, weight}, {out}, flat, weight, begin, count, vocab);
  return out;
}

}  // namespace ternion::autograd

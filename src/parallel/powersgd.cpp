#include "parallel/powersgd.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/kernels.h"

namespace ternion::parallel {

namespace {

// c = alpha · op(a) · op(b) + beta · c for 2-D tensors, through the batched gemm kernel.
void matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha = 1, double beta = 0) {
  const Tensor a3 = a.view({1, a.size(0), a.size(1)}), b3 = b.view({1, b.size(0), b.size(1)});
  Tensor c3 = c.view({1, c.size(0), c.size(1)});
  TN_KERNEL(gemm, c.device(), a3, ta, b3, tb, c3, alpha, beta);
}

}  // namespace

int PowerSgd::matrix_rank(const Shape& s, const PowerSgdOptions& o) {
  const int64_t numel = shape_numel(s);
  if (s.size() < 2 || numel == 0) return 0;
  const int64_t n = s[0], m = numel / s[0];
  const int r = static_cast<int>(std::min<int64_t>({n, m, o.rank}));
  const double rate = static_cast<double>(n * m) / static_cast<double>((n + m) * r);
  return rate >= o.min_compression_rate ? r : 0;
}

PowerSgd::PowerSgd(Communicator& dp, std::vector<std::string> names, const std::vector<Shape>& shapes, DType dtype,
                   Device device, const PowerSgdOptions& options, uint64_t seed)
    : dp_(dp), opt_(options), seed_(seed), dtype_(dtype), device_(device) {
  TN_CHECK(names.size() == shapes.size(), "powersgd", names.size(), " names for ", shapes.size(), " gradients");
  TN_CHECK(opt_.rank >= 1, "powersgd", "the rank must be >= 1, got ", opt_.rank);
  for (size_t i = 0; i < names.size(); ++i) {
    Matrix mat;
    mat.name = std::move(names[i]);
    const Shape& s = shapes[i];
    const int64_t numel = shape_numel(s);
    mat.rank = matrix_rank(s, opt_);
    if (mat.rank) {
      mat.n = s[0];
      mat.m = numel / s[0];
    }
    if (mat.rank == 0) {
      uncompressed_ += numel;
    } else {
      p_elems_ += mat.rank * mat.n;
      q_elems_ += mat.rank * mat.m;
    }
    mats_.push_back(std::move(mat));
  }
  p_buf_ = Tensor::zeros({p_elems_}, dtype_, device_);
  q_buf_ = Tensor::zeros({q_elems_}, dtype_, device_);
  int64_t p_at = 0, q_at = 0;
  for (Matrix& mat : mats_) {
    if (mat.rank == 0) continue;
    mat.pt = p_buf_.slice(0, p_at, p_at + mat.rank * mat.n).view({mat.rank, mat.n});
    mat.q = q_buf_.slice(0, q_at, q_at + mat.rank * mat.m).view({mat.m, mat.rank});
    p_at += mat.rank * mat.n;
    q_at += mat.rank * mat.m;
    if (opt_.error_feedback) mat.error = Tensor::zeros({mat.n, mat.m}, dtype_, device_);
    draw_q(mat);
  }
}

void PowerSgd::draw_q(Matrix& mat) const {
  // The same values on every rank: a pure function of (seed, name, step when not warm).
  std::string stream = "powersgd/";
  stream += mat.name;
  if (!opt_.warm_start) {
    stream += '#';
    stream += std::to_string(steps_);
  }
  Tensor host = Tensor::empty({mat.m, mat.rank});
  init_normal(host, seed_, stream, 0.0, 1.0);
  mat.q.copy_(host.to(dtype_).to(device_));
}

void PowerSgd::orthonormalize(Tensor& pt) const {
  // Gram-Schmidt over the rows of pt (P's columns), as PyTorch's
  // _orthogonalize_gram_schmidt, in the numerically careful order: each row has the rows
  // before it removed twice ("twice is enough": a second pass restores the orthogonality f32
  // loses in the first), then is divided by its norm (+ epsilon). A row that nothing is left
  // of (P's columns dependent: a gradient of lower rank than r') becomes zero instead of
  // amplified rounding noise, so P·Pᵀ stays the projection onto M's columns.
  const int64_t r = pt.size(0);
  Tensor sq = Tensor::empty({}, DType::f64, pt.device());
  const auto norm_of = [&](const Tensor& row) {
    TN_KERNEL(sum_squares, row.device(), row, sq);
    return std::sqrt(sq.item());
  };
  double largest = 0;
  for (int64_t i = 0; i < r; ++i) largest = std::max(largest, norm_of(pt.slice(0, i, i + 1)));
  for (int64_t i = 0; i < r; ++i) {
    Tensor row = pt.slice(0, i, i + 1);
    if (i > 0) {
      Tensor before = pt.slice(0, 0, i);
      Tensor coef = Tensor::empty({1, i}, pt.dtype(), pt.device());
      for (int pass = 0; pass < 2; ++pass) {
        matmul(row, false, before, true, coef);            // its components along the rows before
        matmul(coef, false, before, false, row, -1.0, 1.0);  // removed
      }
    }
    const double norm = norm_of(row);
    const bool nothing_left = !(norm > 1e-6 * largest) || !std::isfinite(norm);
    TN_KERNEL(axpby, row.device(), nothing_left ? 0.0 : 1.0 / (norm + opt_.orthogonalization_epsilon), row, 0.0,
              Tensor(), row);
  }
}

void PowerSgd::reduce_uncompressed(const std::vector<Tensor>& grads) {
  TN_CHECK(grads.size() == mats_.size(), "powersgd", grads.size(), " gradients for ", mats_.size());
  int64_t n = 0;
  for (const Tensor& g : grads) n += g.numel();
  if (n == 0) return;
  Tensor flat = Tensor::empty({n}, dtype_, device_);
  int64_t at = 0;
  for (const Tensor& g : grads) {
    flat.slice(0, at, at + g.numel()).copy_(g.view({g.numel()}));
    at += g.numel();
  }
  dp_.all_reduce(flat, ReduceOp::kAvg);
  at = 0;
  for (const Tensor& g : grads) {
    Tensor dst = g.view({g.numel()});
    dst.copy_(flat.slice(0, at, at + g.numel()));
    at += g.numel();
  }
}

void PowerSgd::reduce(const std::vector<Tensor>& grads) {
  TN_CHECK(grads.size() == mats_.size(), "powersgd", grads.size(), " gradients for ", mats_.size());
  for (size_t i = 0; i < grads.size(); ++i)
    TN_CHECK(grads[i].is_contiguous() && grads[i].numel() == (mats_[i].rank ? mats_[i].n * mats_[i].m : grads[i].numel()),
             "powersgd", "gradient ", mats_[i].name, " ", grads[i].str(), " does not match its matrix");
  if (!opt_.warm_start && steps_ > 0)
    for (Matrix& mat : mats_)
      if (mat.rank) draw_q(mat);
  ++steps_;
  // The exact part first, in one buffer.
  std::vector<Tensor> plain;
  for (size_t i = 0; i < grads.size(); ++i)
    if (!mats_[i].rank) plain.push_back(grads[i]);
  if (uncompressed_ > 0) {
    Tensor flat = Tensor::empty({uncompressed_}, dtype_, device_);
    int64_t at = 0;
    for (const Tensor& g : plain) {
      flat.slice(0, at, at + g.numel()).copy_(g.view({g.numel()}));
      at += g.numel();
    }
    dp_.all_reduce(flat, ReduceOp::kAvg);
    at = 0;
    for (const Tensor& g : plain) {
      Tensor dst = g.view({g.numel()});
      dst.copy_(flat.slice(0, at, at + g.numel()));
      at += g.numel();
    }
  }
  if (p_elems_ == 0) return;
  std::vector<Tensor> ms;
  for (size_t i = 0; i < grads.size(); ++i) {
    Matrix& mat = mats_[i];
    if (!mat.rank) continue;
    Tensor m = grads[i].view({mat.n, mat.m});
    if (opt_.error_feedback) TN_KERNEL(axpby, m.device(), 1.0, m, 1.0, mat.error, m);
    matmul(mat.q, true, m, true, mat.pt);  // Pᵀ = Qᵀ·Mᵀ
    ms.push_back(m);
  }
  dp_.all_reduce(p_buf_, ReduceOp::kSum);
  size_t k = 0;
  for (Matrix& mat : mats_) {
    if (!mat.rank) continue;
    orthonormalize(mat.pt);
    matmul(ms[k++], true, mat.pt, true, mat.q);  // Q = Mᵀ·P
  }
  dp_.all_reduce(q_buf_, ReduceOp::kSum);
  const double inv = 1.0 / static_cast<double>(dp_.size());
  k = 0;
  for (Matrix& mat : mats_) {
    if (!mat.rank) continue;
    Tensor& m = ms[k++];
    if (opt_.error_feedback) mat.error.copy_(m);
    matmul(mat.pt, true, mat.q, true, m, inv, 0.0);  // M̂ = P·Qᵀ / N
    if (opt_.error_feedback) TN_KERNEL(axpby, m.device(), 1.0, mat.error, -1.0, m, mat.error);
  }
}

}  // namespace ternion::parallel

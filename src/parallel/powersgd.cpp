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
                   Device device, const PowerSgdOptions& options, uint64_t seed, std::vector<std::vector<int>> groups)
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
  if (groups.empty()) {
    groups.emplace_back();
    for (size_t i = 0; i < mats_.size(); ++i) groups.back().push_back(static_cast<int>(i));
  }
  std::vector<int> seen(mats_.size(), 0);
  for (const auto& g : groups)
    for (const int i : g) {
      TN_CHECK(i >= 0 && static_cast<size_t>(i) < mats_.size(), "powersgd", "group member ", i, " of ", mats_.size(),
               " gradients");
      ++seen[static_cast<size_t>(i)];
    }
  for (size_t i = 0; i < seen.size(); ++i)
    TN_CHECK(seen[i] == 1, "powersgd", "gradient ", mats_[i].name, " is in ", seen[i], " groups, not one");
  p_buf_ = Tensor::zeros({p_elems_}, dtype_, device_);
  q_buf_ = Tensor::zeros({q_elems_}, dtype_, device_);
  // Each group's P's and Q's are contiguous, so each is one all-reduce.
  int64_t p_at = 0, q_at = 0;
  for (auto& members : groups) {
    Group g;
    const int64_t p0 = p_at, q0 = q_at;
    for (const int i : members) {
      Matrix& mat = mats_[static_cast<size_t>(i)];
      if (mat.rank == 0) {
        g.exact += static_cast<int64_t>(shape_numel(shapes[static_cast<size_t>(i)]));
        continue;
      }
      mat.pt = p_buf_.slice(0, p_at, p_at + mat.rank * mat.n).view({mat.rank, mat.n});
      mat.q = q_buf_.slice(0, q_at, q_at + mat.rank * mat.m).view({mat.m, mat.rank});
      p_at += mat.rank * mat.n;
      q_at += mat.rank * mat.m;
      if (opt_.error_feedback) mat.error = Tensor::zeros({mat.n, mat.m}, dtype_, device_);
      draw_q(mat);
    }
    if (p_at > p0) {
      g.p = p_buf_.slice(0, p0, p_at);
      g.q = q_buf_.slice(0, q0, q_at);
    }
    g.members = std::move(members);
    groups_.push_back(std::move(g));
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
  begin();
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::vector<Tensor> mine;
    for (const int i : groups_[g].members) mine.push_back(grads[static_cast<size_t>(i)]);
    launch(g, mine);
  }
  end();
}

void PowerSgd::begin() {
  TN_CHECK(!active_, "powersgd", "begin() twice without end()");
  if (!opt_.warm_start && steps_ > 0)
    for (Matrix& mat : mats_)
      if (mat.rank) draw_q(mat);
  ++steps_;
  next_launch_ = next_q_ = 0;
  active_ = true;
}

void PowerSgd::launch(size_t g, const std::vector<Tensor>& grads) {
  TN_CHECK(active_, "powersgd", "launch() outside begin() and end()");
  TN_CHECK(g == next_launch_, "powersgd", "group ", g, " launched before group ", next_launch_,
           " (every rank must send the groups in one order)");
  Group& G = groups_[g];
  TN_CHECK(grads.size() == G.members.size(), "powersgd", grads.size(), " gradients for group ", g, " of ",
           G.members.size());
  for (size_t k = 0; k < grads.size(); ++k) {
    const Matrix& mat = mats_[static_cast<size_t>(G.members[k])];
    TN_CHECK(grads[k].is_contiguous() && (!mat.rank || grads[k].numel() == mat.n * mat.m), "powersgd", "gradient ",
             mat.name, " ", grads[k].str(), " does not match its matrix");
  }
  G.grads = grads;
  // The exact part, in one buffer.
  if (G.exact > 0) {
    G.flat = Tensor::empty({G.exact}, dtype_, device_);
    int64_t at = 0;
    for (size_t k = 0; k < grads.size(); ++k) {
      if (mats_[static_cast<size_t>(G.members[k])].rank) continue;
      const Tensor& t = grads[k];
      G.flat.slice(0, at, at + t.numel()).copy_(t.view({t.numel()}));
      at += t.numel();
    }
    G.exact_work = dp_.all_reduce_async(G.flat, ReduceOp::kAvg);
  }
  // P = (M + error)·Q for each compressed matrix, then all of the group's P's summed.
  for (size_t k = 0; k < grads.size(); ++k) {
    Matrix& mat = mats_[static_cast<size_t>(G.members[k])];
    if (!mat.rank) continue;
    Tensor m = grads[k].view({mat.n, mat.m});
    if (opt_.error_feedback) TN_KERNEL(axpby, m.device(), 1.0, m, 1.0, mat.error, m);
    matmul(mat.q, true, m, true, mat.pt);  // Pᵀ = Qᵀ·Mᵀ
  }
  if (G.p.defined()) G.p_work = dp_.all_reduce_async(G.p, ReduceOp::kSum);
  ++next_launch_;
  if (g > 0) start_q(g - 1);
}

void PowerSgd::start_q(size_t g) {
  Group& G = groups_[g];
  TN_CHECK(g == next_q_, "powersgd", "group ", g, "'s Q phase before group ", next_q_, "'s");
  ++next_q_;
  if (!G.p_work) return;
  G.p_work->wait();
  G.p_work.reset();
  for (size_t k = 0; k < G.members.size(); ++k) {
    Matrix& mat = mats_[static_cast<size_t>(G.members[k])];
    if (!mat.rank) continue;
    orthonormalize(mat.pt);
    matmul(G.grads[k].view({mat.n, mat.m}), true, mat.pt, true, mat.q);  // Q = Mᵀ·P
  }
  G.q_work = dp_.all_reduce_async(G.q, ReduceOp::kSum);
}

void PowerSgd::end() {
  TN_CHECK(active_, "powersgd", "end() without begin()");
  TN_CHECK(next_launch_ == groups_.size(), "powersgd", "end() with ", groups_.size() - next_launch_,
           " group(s) not launched");
  while (next_q_ < groups_.size()) start_q(next_q_);
  const double inv = 1.0 / static_cast<double>(dp_.size());
  for (Group& G : groups_) {
    if (G.exact_work) {
      G.exact_work->wait();
      G.exact_work.reset();
      int64_t at = 0;
      for (size_t k = 0; k < G.grads.size(); ++k) {
        if (mats_[static_cast<size_t>(G.members[k])].rank) continue;
        Tensor dst = G.grads[k].view({G.grads[k].numel()});
        dst.copy_(G.flat.slice(0, at, at + dst.numel()));
        at += dst.numel();
      }
      G.flat = Tensor();
    }
    if (G.q_work) {
      G.q_work->wait();
      G.q_work.reset();
      for (size_t k = 0; k < G.members.size(); ++k) {
        Matrix& mat = mats_[static_cast<size_t>(G.members[k])];
        if (!mat.rank) continue;
        Tensor m = G.grads[k].view({mat.n, mat.m});
        if (opt_.error_feedback) mat.error.copy_(m);
        matmul(mat.pt, true, mat.q, true, m, inv, 0.0);  // M̂ = P·Qᵀ / N
        if (opt_.error_feedback) TN_KERNEL(axpby, m.device(), 1.0, mat.error, -1.0, m, mat.error);
      }
    }
    G.grads.clear();
  }
  active_ = false;
}

}  // namespace ternion::parallel

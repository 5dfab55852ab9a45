// Causal scaled-dot-product attention, fused: one node saves q, k, v, out and the row
// log-sum-exp [B,H,T]; the backward recomputes the softmax from them, so no [B,H,T,T]
// activation outlives the forward.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

class CausalAttention final : public Node {
 public:
  CausalAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                  const Tensor& lse) {
    save(q);
    save(k);
    save(v);
    save(out);
    save(lse);
  }
  std::string_view name() const override { return "CausalAttention"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& q = saved(0);
    Tensor dq = empty_like(q), dk = empty_like(q), dv = empty_like(q);
    TN_KERNEL(attention_backward, q.device(), q, saved(1), saved(2), saved(3), saved(4),
              grads[0].contiguous(), dq, dk, dv);
    return {dq, dk, dv};
  }
};

}  // namespace

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  check_float(q, "causal_attention", "q");
  check_float(k, "causal_attention", "k");
  check_float(v, "causal_attention", "v");
  check_like(q, k, "causal_attention");
  check_like(q, v, "causal_attention");
  TN_CHECK(q.ndim() == 4 && q.shape() == k.shape() && q.shape() == v.shape(), "causal_attention",
           "q, k, v must all be [B, H, T, D], got ", q.str(), ", ", k.str(), ", ", v.str());
  Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  Tensor o = empty_like(qc);
  Tensor lse =
      Tensor::empty({q.size(0), q.size(1), q.size(2)}, stats_dtype(q.dtype()), q.device());
  TN_KERNEL(attention_forward, q.device(), qc, kc, vc, o, lse);
  // The node saves o and returns a view of it: the returned tensor holds the node as its
  // grad_fn, so saving that tensor itself would be a reference cycle.
  Tensor out = o.view(o.shape());
  record<CausalAttention>({q, k, v}, {out}, qc, kc, vc, o, lse);
  return out;
}

}  // namespace ternion::autograd

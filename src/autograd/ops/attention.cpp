// Causal scaled-dot-product attention, fused: one node saves q, k, v and the softmax
// probabilities [B,H,T,T] instead of the composed graph's intermediates.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace ternion::autograd {
using namespace detail;

namespace {

class CausalAttention final : public Node {
 public:
  CausalAttention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs) {
    save(q);
    save(k);
    save(v);
    save(probs);
  }
  std::string_view name() const override { return "CausalAttention"; }
  std::vector<Tensor> backward(std::vector<Tensor>& grads) override {
    const Tensor& q = saved(0);
    Tensor dq = empty_like(q), dk = empty_like(q), dv = empty_like(q);
    TN_KERNEL(attention_backward, q.device(), q, saved(1), saved(2), saved(3),
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
  Tensor out = empty_like(qc);
  Tensor probs = Tensor::empty({q.size(0), q.size(1), q.size(2), q.size(2)}, q.dtype(), q.device());
  TN_KERNEL(attention_forward, q.device(), qc, kc, vc, out, probs);
  record<CausalAttention>({q, k, v}, {out}, qc, kc, vc, probs);
  return out;
}

}  // namespace ternion::autograd

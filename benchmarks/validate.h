// Checks before timing (the llm.c habit): each function runs its CPU kernels in f32 on a
// small case and compares every output with a naive f64 loop written from the formula in the
// kernel's header. The first call does the check and prints one line to stderr; later calls
// return at once. A mismatch prints the output, index, values and error, then aborts.
// Thread-safe (function-local statics).
#pragma once

namespace ternion::bench {

void validate_gemm();            // the three linear-layer GEMMs: y = x w^T, dx = dy w, dw = dy^T x
void validate_layernorm();       // forward y, mean, rstd; backward dx, dw (+=), db (+=)
void validate_attention();       // causal forward out, probs; backward dq, dk, dv
void validate_gelu();            // forward y; backward dx
void validate_cross_entropy();   // forward lse, loss; backward dlogits

}  // namespace ternion::bench

#!/usr/bin/env bash
# GPT-2 124M training throughput on one GPU: builds benchmarks/gpt2_bench (Release, CUDA)
# and runs it, bf16 by default; when a python3 with torch and CUDA is present, also runs
# the same model and step in PyTorch (nanoGPT's GPT, bf16 autocast, fused AdamW off,
# no torch.compile) for comparison. Writes under build/bench-gpt2/:
#   ternion.txt, torch.txt   console output; RESULT lines hold tokens/s and MFU
#   machine.txt              nvidia-smi, nvcc and torch versions
# Environment: TERNION_BENCH_BUILD_DIR (build-bench-gpt2), BENCH_STEPS (20), BENCH_WARMUP (5),
#   BENCH_BATCH (16), PEAK_TFLOPS (989: H100 SXM bf16 dense), PYTHON (default python3).
# Extra arguments go to gpt2_bench (e.g. --precision fp32, --accum 4).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TERNION_BENCH_BUILD_DIR:-build-bench-gpt2}
OUT_DIR=build/bench-gpt2
STEPS=${BENCH_STEPS:-20}
WARMUP=${BENCH_WARMUP:-5}
BATCH=${BENCH_BATCH:-16}
PEAK=${PEAK_TFLOPS:-989}
PYTHON=${PYTHON:-python3}

GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DTERNION_CUDA=ON \
  -DTERNION_BUILD_TESTS=OFF -DTERNION_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" --target gpt2_bench -j "$(nproc)"

mkdir -p "$OUT_DIR"
{
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  nvcc --version 2>&1 | tail -n 2 || true
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 || true
} > "$OUT_DIR/machine.txt"

"$BUILD_DIR/benchmarks/gpt2_bench" --steps "$STEPS" --warmup "$WARMUP" --batch "$BATCH" \
  --peak-tflops "$PEAK" "$@" | tee "$OUT_DIR/ternion.txt"

if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$PYTHON" - "$STEPS" "$WARMUP" "$BATCH" "$PEAK" <<'PY' | tee "$OUT_DIR/torch.txt"
# The same step in PyTorch eager: GPT-2 124M (nanoGPT layout, tied head), bf16 autocast,
# AdamW(0.9, 0.95, wd 0.1), clip 1.0, synthetic tokens. MFU with the same 6N + 6LCT.
import json, math, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
steps, warmup, B, peak = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) * 1e12
L, C, H, T, V = 12, 768, 12, 1024, 50304
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln_1, s.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.c_attn, s.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.c_fc, s.c_proj2 = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
    def forward(s, x):
        q, k, v = s.c_attn(s.ln_1(x)).split(C, dim=2)
        h = lambda t: t.view(x.size(0), T, H, C // H).transpose(1, 2)
        a = F.scaled_dot_product_attention(h(q), h(k), h(v), is_causal=True)
        x = x + s.c_proj(a.transpose(1, 2).reshape(x.size(0), T, C))
        return x + s.c_proj2(F.gelu(s.c_fc(s.ln_2(x)), approximate="tanh"))
class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        s.h, s.ln_f = nn.ModuleList(Block() for _ in range(L)), nn.LayerNorm(C)
    def forward(s, idx, tgt):
        x = s.wte(idx) + s.wpe(torch.arange(T, device=idx.device))
        for b in s.h: x = b(x)
        return F.cross_entropy(F.linear(s.ln_f(x), s.wte.weight).float().view(-1, V), tgt.view(-1))
m = GPT().cuda()
n = sum(p.numel() for p in m.parameters()) - m.wpe.weight.numel()
fpt = 6 * n + 6 * L * C * T
opt = torch.optim.AdamW(m.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
g = torch.Generator(device="cuda").manual_seed(1234)
tps = []
for step in range(warmup + steps):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    idx = torch.randint(0, V, (B, T), device="cuda", generator=g)
    tgt = torch.randint(0, V, (B, T), device="cuda", generator=g)
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m(idx, tgt)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    torch.cuda.synchronize(); dt = time.perf_counter() - t0
    if step >= warmup: tps.append(B * T / dt)
    print(f"torch step {step + 1}: loss {loss.item():.4f} {dt * 1e3:.1f} ms {B * T / dt:.0f} tok/s")
med = sorted(tps)[len(tps) // 2]
print("RESULT " + json.dumps({"impl": "pytorch", "device": torch.cuda.get_device_name(),
      "tokens_per_sec_median": med, "mfu_median": fpt * med / peak}))
PY
else
  echo "bench_gpt2.sh: no python3 with torch and CUDA; skipping the PyTorch comparison" >&2
fi

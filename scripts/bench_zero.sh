#!/usr/bin/env bash
# ZeRO, measured against the formulas, side by side in one run: the tiny GPT of
# configs/gpt-tiny-cpu.yaml (4 layers, C = 128, V = 256, Ψ = 842,496 parameters, global batch
# 16 of 128 tokens) under each ZeRO stage.
# Reports:
#  - memory: rank 0's params + grads + optim bytes from memory.json at dp = 1, 2, 4, 8 for
#    stages 0-3, beside the ZeRO paper's fp32 model states (4 + 4 + 8)Ψ, (4 + 4 + 8/N)Ψ,
#    (4 + 12/N)Ψ, 16Ψ/N, and their ratio;
#  - traffic: rank 0's comm_bytes.dp per step from metrics.jsonl at dp = 4, with one
#    micro-batch per rank (micro-batch 4) and with two (micro-batch 2), beside stage 0's;
#  - time: the median step at dp = 2 (two ranks, one thread each, on the same two cores) of
#    each stage against stage 0, and for stage 3 the time blocked on dp collectives
#    (comm_ms) with the prefetch on and off.
# dp = 4 and 8 oversubscribe two cores: only their bytes are meaningful.
# Usage: scripts/bench_zero.sh [STEPS=10]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-10}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
CORES=$(nproc --all)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== $CORES cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
run() {  # dp stage micro prefetch
  local dp=$1 stage=$2 micro=$3 prefetch=$4 bind=(--bind-to core)
  [ "$dp" -gt "$CORES" ] && bind=(--bind-to none)
  OMP_NUM_THREADS=1 mpirun --oversubscribe -np "$dp" "${bind[@]}" "$TERNION" train \
    --config configs/gpt-tiny-cpu.yaml --set data.train="$WORK/data/fortunes.h5" --set data.val= \
    --set train.steps="$STEPS" --set log.interval=1 --set checkpoint.interval=0 --set train.eval_interval=0 \
    --set train.micro_batch_size="$micro" --set parallel.zero_stage="$stage" \
    --set parallel.zero_prefetch="$prefetch" --set parallel.bucket_mb=1 \
    --set run.dir="$WORK/dp${dp}_z${stage}_m${micro}_${prefetch}" >/dev/null
}
for dp in 1 2 4 8; do
  for stage in 0 1 2 3; do run "$dp" "$stage" 2 true; done
done
for stage in 0 1 2 3; do run 4 "$stage" 4 true; done
run 2 3 2 false
python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
psi = 842496
def paper(stage, n):
    return {0: 16 * psi, 1: (8 + 8 / n) * psi, 2: (4 + 12 / n) * psi, 3: 16 * psi / n}[stage]
def mem(d):
    r = json.load(open(f"{work}/{d}/memory.json"))["ranks"][0]
    return r["params"], r["grads"], r["optim"]
def rows(d):
    return [json.loads(l) for l in open(f"{work}/{d}/metrics.jsonl")][2:]
print("per-rank model states (rank 0, bytes) against the ZeRO paper's formula")
print(f"{'dp':>3} {'stage':>5} {'params':>10} {'grads':>10} {'optim':>10} {'total':>10} {'formula':>10} {'ratio':>6}")
for n in (1, 2, 4, 8):
    for s in range(4):
        p, g, o = mem(f"dp{n}_z{s}_m2_true")
        t = p + g + o
        print(f"{n:>3} {s:>5} {p:>10} {g:>10} {o:>10} {t:>10} {paper(s, n):>10.0f} {t / paper(s, n):>6.3f}")
print()
print("comm_bytes.dp per step at dp = 4 (rank 0), against stage 0")
print(f"{'micro-batches':>13} {'stage':>5} {'dp bytes':>10} {'vs stage 0':>10}")
for micro, m in ((4, 1), (2, 2)):
    base = None
    for s in range(4):
        b = statistics.median(r["comm_bytes"]["dp"] for r in rows(f"dp4_z{s}_m{micro}_true"))
        base = base or b
        print(f"{m:>13} {s:>5} {int(b):>10} {b / base:>10.3f}")
print()
print("step time at dp = 2 (two ranks on the same two cores), median ms, against stage 0")
print(f"{'stage':>8} {'step ms':>8} {'vs 0':>6} {'comm_ms':>8}")
base = None
for s, tag in ((0, "true"), (1, "true"), (2, "true"), (3, "true"), (3, "false")):
    rs = rows(f"dp2_z{s}_m2_{tag}")
    ms = statistics.median(r["ms"] for r in rs)
    comm = statistics.median(r.get("comm_ms", 0) for r in rs)
    base = base or ms
    label = f"{s}" + ("" if tag == "true" or s < 3 else " (no prefetch)")
    print(f"{label:>8} {ms:>8.1f} {ms / base:>6.2f} {comm:>8.2f}")
PY

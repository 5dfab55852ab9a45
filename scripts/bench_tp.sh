#!/usr/bin/env bash
# Tensor parallelism, measured against the formulas, side by side in one run: the tiny GPT of
# configs/gpt-tiny-cpu.yaml (4 layers, C = 128, V = 256, micro-batches of 4 x 128 tokens,
# 4 per step) at tp = 1, 2 and 4, with and without sequence parallelism.
# Reports per layout:
#  - rank 0's parameter bytes from memory.json beside the analytic count (split weights / tp,
#    replicated parts whole, wte rows padded to a multiple of 64);
#  - rank 0's comm_bytes.tp per step from metrics.jsonl beside the analytic count;
#  - the median step time (first 3 steps excluded) and the share of it inside tp
#    collectives (tp_comm_ms / ms). tp = 1 runs one rank with OMP_NUM_THREADS=2, tp = 2 two
#    ranks with 1 thread each: the same two cores (and tp = 1 on one core, for scale).
#    tp = 4 oversubscribes two cores, so only its bytes are meaningful.
# Usage: scripts/bench_tp.sh [STEPS=12]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-12}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
CORES=$(nproc --all)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== $CORES cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
run() {  # tp sp [threads]
  local tp=$1 sp=$2 threads=1 bind=(--bind-to core)
  [ "$tp" = 1 ] && threads=$CORES
  [ $# -gt 2 ] && threads=$3
  # one process with several threads must not be bound to one core; oversubscribed ranks neither
  { [ "$threads" -gt 1 ] || [ "$tp" -gt "$CORES" ]; } && bind=(--bind-to none)
  OMP_NUM_THREADS=$threads mpirun --oversubscribe -np "$tp" "${bind[@]}" "$TERNION" train \
    --config configs/gpt-tiny-cpu.yaml --set data.train="$WORK/data/fortunes.h5" --set data.val= \
    --set train.steps="$STEPS" --set log.interval=1 --set checkpoint.interval=0 --set train.eval_interval=0 \
    --set parallel.tp="$tp" --set parallel.sequence_parallel="$sp" --set run.dir="$WORK/tp${tp}_${sp}${4:-}" >/dev/null
}
run 1 false 1 _1core  # one process on one core, for scale
for tp in 1 2 4; do
  run "$tp" false
  [ "$tp" -gt 1 ] && run "$tp" true
done
python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
V, T, L, C, micro, m = 256, 128, 4, 128, 4, 4  # configs/gpt-tiny-cpu.yaml; m = 16 / 4 micro-batches
def vocab_rows(tp):
    if tp == 1:
        return V
    most = (V + tp - 1) // tp
    return (most + 63) // 64 * 64
def params(tp):
    return 4 * (L * (12 * C * C // tp + 7 * C // tp + 6 * C) + vocab_rows(tp) * C + T * C + 2 * C)
def tp_bytes(tp, sp):
    ar = lambda b: 2 * (tp - 1) * b // tp
    N = micro * T
    per_micro = (4 * L + 2) * ar(N * C * 4) + ar(N * 4) + ar(2 * N * 4)
    total = m * per_micro + ar(8)
    if sp:
        total += ar(4 * (L * 6 * C + T * C + 2 * C))
    return total
print(f"{'tp':>10} {'sp':>5} {'params B':>10} {'formula':>10} {'tp B/step':>11} {'formula':>11} {'step ms':>8} {'vs tp=1':>8} {'in tp coll.':>11}")
base = None
for tp, sp, tag in ((1, "false", ""), (1, "false", "_1core"), (2, "false", ""), (2, "true", ""),
                    (4, "false", ""), (4, "true", "")):
    d = f"{work}/tp{tp}_{sp}{tag}"
    mem = json.load(open(f"{d}/memory.json"))["ranks"][0]["params"]
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")][3:]
    tpb = statistics.median(r["comm_bytes"]["tp"] for r in rows)
    ms = statistics.median(r["ms"] for r in rows)
    share = statistics.median(r.get("tp_comm_ms", 0) / r["ms"] for r in rows)
    base = base or ms
    ratio = f"{ms / base:.2f}" if tp <= 2 else "-"
    label = "1 (1 core)" if tag else str(tp)
    print(f"{label:>10} {sp:>5} {mem:>10} {params(tp):>10} {int(tpb):>11} {tp_bytes(tp, sp == 'true'):>11} "
          f"{ms:>8.1f} {ratio:>8} {share:>11.2f}")
PY

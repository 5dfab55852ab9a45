#!/usr/bin/env bash
# Activation memory of the first pipeline stage per schedule, side by side in one run: the tiny
# GPT of configs/gpt-tiny-cpu.yaml made 8 layers deep, over p = 4 stages with m = 8
# micro-batches per step (global batch 16, micro-batch 2), under GPipe, 1F1B and interleaved
# 1F1B (v = 2 chunks of one layer per stage). Reports rank 0's activations_peak from
# memory.json (the most bytes its saved activations held during a step), its ratio to GPipe's,
# and the schedule's count of (micro-batch, chunk) activations stage 0 holds at once
# (pipeline_schedule.h: gpipe m, 1f1b min(p, m), interleaved min(v*m, w+1)) as a share of
# GPipe's. Four ranks on fewer cores oversubscribe: the bytes are exact, the times are not
# (no time is reported).
# Usage: scripts/bench_pp_memory.sh [STEPS=4]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-4}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "== $(nproc --all) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
for sched in gpipe 1f1b interleaved; do
  v=1
  [ "$sched" = interleaved ] && v=2
  mpirun --oversubscribe -np 4 --bind-to none "$TERNION" train --config configs/gpt-tiny-cpu.yaml \
    --set data.train="$WORK/data/fortunes.h5" --set data.val= --set train.steps="$STEPS" --set log.interval=1 \
    --set checkpoint.interval=0 --set train.eval_interval=0 --set model.n_layer=8 \
    --set train.global_batch_size=16 --set train.micro_batch_size=2 --set parallel.pp=4 \
    --set parallel.pp_schedule=$sched --set parallel.virtual_stages=$v --set run.dir="$WORK/$sched" >/dev/null
done
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
p, m = 4, 8
def held(sched):  # (micro-batch, chunk) units on stage 0, in micro-batches of a whole stage
    if sched == "gpipe":
        return m
    if sched == "1f1b":
        return min(p, m)
    v = 2
    w = v * m if m == p else min(v * m, 2 * (p - 1) + (v - 1) * p)
    return min(v * m, w + 1) / v
peaks = {s: json.load(open(f"{work}/{s}/memory.json"))["ranks"][0]["activations_peak"] for s in ("gpipe", "1f1b", "interleaved")}
print(f"{'schedule':>12} {'activations_peak B':>19} {'vs gpipe':>9} {'schedule count vs gpipe':>24}")
for s, b in peaks.items():
    print(f"{s:>12} {b:>19} {b / peaks['gpipe']:>9.3f} {held(s) / held('gpipe'):>24.3f}")
print(f"p/m = {p / m:.3f}")
PY

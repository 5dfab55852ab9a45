#!/usr/bin/env bash
# Pipeline bubble, measured against the formula, side by side in one run: the tiny GPT of
# configs/gpt-tiny-cpu.yaml (4 layers) over 2 pipeline stages, one rank per core, GPipe,
# 1F1B and interleaved 1F1B (2 chunks of one layer per stage) with m = 2, 4, 8 and 16
# micro-batches per step (global batch 16, micro-batch 8, 4, 2, 1).
# Reports, per (schedule, m), the median over steps (first 3 excluded) of rank 0's
# pp_idle (the share of the step's schedule stage 0 spent outside compute), beside
# (p-1)/(m+p-1) (interleaved: (p-1)/(v*m+p-1)), and the median step time.
# Usage: scripts/bench_pp.sh [STEPS=15]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-15}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
CORES=$(nproc --all)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "== $CORES cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
for sched in gpipe 1f1b interleaved; do
  v=1
  [ "$sched" = interleaved ] && v=2
  for m in 2 4 8 16; do
    mpirun --oversubscribe -np 2 --bind-to core "$TERNION" train --config configs/gpt-tiny-cpu.yaml \
      --set data.train="$WORK/data/fortunes.h5" --set data.val= --set train.steps="$STEPS" --set log.interval=1 \
      --set checkpoint.interval=0 --set train.eval_interval=0 --set train.global_batch_size=16 \
      --set train.micro_batch_size=$((16 / m)) --set parallel.pp=2 --set parallel.pp_schedule=$sched --set parallel.virtual_stages=$v \
      --set run.dir="$WORK/${sched}_$m" >/dev/null
  done
done
python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
print(f"{'schedule':>9} {'m':>3} {'measured idle':>14} {'(p-1)/(m+p-1)':>14} {'ratio':>6} {'step ms':>8}")
for sched in ("gpipe", "1f1b", "interleaved"):
    v = 2 if sched == "interleaved" else 1
    for m in (2, 4, 8, 16):
        rows = [json.loads(l) for l in open(f"{work}/{sched}_{m}/metrics.jsonl")][3:]
        idle = statistics.median(r["pp_idle"] for r in rows)
        ms = statistics.median(r["ms"] for r in rows)
        ideal = 1 / (v * m + 1)
        print(f"{sched:>9} {m:>3} {idle:>14.3f} {ideal:>14.3f} {idle / ideal:>6.2f} {ms:>8.1f}")
PY

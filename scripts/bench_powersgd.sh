#!/usr/bin/env bash
# PowerSGD, measured side by side in one run:
#  1. benchmarks/powersgd_bench under mpirun -np 2 at GPT-2 small's gradient shapes: bytes per
#     step at rank 1, 2, 4, 8 against the plain all-reduce (and the analytic ratio), the
#     compression time, and the break-even link bandwidth;
#  2. configs/gpt-tiny-cpu.yaml for STEPS steps at dp = 4, uncompressed and at rank 1, 2, 4,
#     8, 32: the final loss (mean of the last 10 steps) against uncompressed, and
#     comm_bytes.dp per step.
# Usage: scripts/bench_powersgd.sh [STEPS=300]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-300}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion powersgd_bench >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "== $(nproc --all) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
mpirun --oversubscribe -np 2 --bind-to core "$BUILD/benchmarks/powersgd_bench" 3
for r in 0 1 2 4 8 32; do
  mpirun --oversubscribe -np 4 "$TERNION" train --config configs/gpt-tiny-cpu.yaml \
    --set data.train="$WORK/data/fortunes.h5" --set data.val= --set train.steps="$STEPS" \
    --set train.eval_interval=0 --set checkpoint.interval=0 --set log.interval=1 \
    --set parallel.powersgd.rank=$r --set run.dir="$WORK/rank$r" > /dev/null
done
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
def rows(r):
    return [json.loads(l) for l in open(f"{work}/rank{r}/metrics.jsonl")]
base = rows(0)
fa = sum(x["loss"] for x in base[-10:]) / 10
ba = base[-1]["comm_bytes"]["dp"]
print(f"\ngpt-tiny-cpu at dp = 4, {len(base)} steps: final loss (mean of the last 10) and dp bytes per step")
print(f"{'rank':>5} {'final loss':>10} {'vs none':>8} {'dp bytes':>10} {'vs none':>8}")
for r in (0, 1, 2, 4, 8, 32):
    x = rows(r)
    f = sum(y["loss"] for y in x[-10:]) / 10
    b = x[-1]["comm_bytes"]["dp"]
    print(f"{r if r else 'none':>5} {f:>10.4f} {f / fa - 1:>+8.2%} {b:>10} {b / ba:>8.4f}")
PY

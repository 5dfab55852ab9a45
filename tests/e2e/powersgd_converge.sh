#!/usr/bin/env bash
# PowerSGD convergence: configs/gpt-tiny-cpu.yaml on the fortunes corpus for 300 steps at
# dp = 4 (mpirun -np 4), uncompressed and with parallel.powersgd.rank = 4 (from step 10):
# the compressed run's final loss (mean of the last 10 steps) is within 5% of the
# uncompressed one's (measured: +3.6%; docs/performance.md has rank 1-32: the 2% the
# design aimed at needs rank 32 here), and from its start step on it sends under a tenth of
# the dp bytes.
# Usage: powersgd_converge.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
rm -rf "$WORK"
mkdir -p "$WORK"
bash "$ROOT/scripts/prepare_fortunes.sh" "$TERNION" "$WORK/data" > /dev/null
ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set data.train="$WORK/data/fortunes.h5" --set data.val=
      --set train.steps=300 --set train.eval_interval=0 --set checkpoint.interval=0 --set log.interval=1)
for r in 0 4; do
  mpirun --oversubscribe -np 4 "$TERNION" train "${ARGS[@]}" --set parallel.powersgd.rank=$r \
    --set run.dir="$WORK/rank$r" > "$WORK/rank$r.log" 2>&1 || { cat "$WORK/rank$r.log"; echo "FAIL: rank $r run"; exit 1; }
done
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
def rows(r):
    return [json.loads(l) for l in open(f"{work}/rank{r}/metrics.jsonl")]
a, b = rows(0), rows(4)
fa = sum(r["loss"] for r in a[-10:]) / 10
fb = sum(r["loss"] for r in b[-10:]) / 10
ba, bb = a[-1]["comm_bytes"]["dp"], b[-1]["comm_bytes"]["dp"]
print(f"final loss (mean of the last 10 steps): uncompressed {fa:.4f}, rank 4 {fb:.4f} ({fb / fa - 1:+.2%})")
print(f"dp bytes per step: uncompressed {ba}, rank 4 {bb} ({bb / ba:.4f})")
assert abs(fb - fa) <= 0.05 * fa, "rank 4 is not within 5% of the uncompressed final loss"
assert bb * 10 < ba, "rank 4 does not cut the dp traffic tenfold"
print("powersgd converge: ok")
PY

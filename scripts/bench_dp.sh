#!/usr/bin/env bash
# Data-parallel training throughput on one machine, side by side in one run: the same model
# and global batch trained by 1 rank with T threads and by R ranks with T/R threads each
# (same cores), interleaved round by round. Reports median tokens/s (first steps excluded),
# the time each step waited on the gradient all-reduce, and the ratios.
# Usage: scripts/bench_dp.sh [RANKS=2] [STEPS=30] [ROUNDS=3]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
RANKS=${1:-2}
STEPS=${2:-30}
ROUNDS=${3:-3}
CORES=$(nproc)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(--config configs/gpt-tiny-cpu.yaml --set data.train="$WORK/data/fortunes.h5" --set data.val=
      --set train.steps="$STEPS" --set log.interval=1 --set checkpoint.interval=0 --set train.eval_interval=0
      --set train.global_batch_size=16 --set train.micro_batch_size=4)
echo "== $CORES cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  OMP_NUM_THREADS=$CORES "$TERNION" train "${ARGS[@]}" --set run.dir="$WORK/one_$round" >/dev/null
  OMP_NUM_THREADS=$((CORES / RANKS > 0 ? CORES / RANKS : 1)) mpirun --oversubscribe -np "$RANKS" --bind-to none \
    "$TERNION" train "${ARGS[@]}" --set run.dir="$WORK/dp_$round" >/dev/null
done
python3 - "$WORK" "$ROUNDS" "$RANKS" "$CORES" <<'PY'
import json, statistics, sys
work, rounds, ranks, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def load(name):
    tps, ms, comm = [], [], []
    for r in range(1, rounds + 1):
        rows = [json.loads(l) for l in open(f"{work}/{name}_{r}/metrics.jsonl")][3:]
        tps.append(statistics.median(x["tokens_per_sec"] for x in rows))
        ms.append(statistics.median(x["ms"] for x in rows))
        comm.append(statistics.median(x.get("comm_ms", 0) for x in rows))
    return max(tps), statistics.median(ms), statistics.median(comm)
one, dp = load("one"), load("dp")
print("| run | tokens/s (best round) | step ms | comm wait ms (share of step) |")
print("|---|---:|---:|---:|")
print(f"| 1 rank x {cores} threads | {one[0]:.0f} | {one[1]:.1f} | - |")
print(f"| {ranks} ranks x {max(1, cores // ranks)} threads | {dp[0]:.0f} | {dp[1]:.1f} | {dp[2]:.2f} ({100 * dp[2] / dp[1]:.1f}%) |")
print(f"\nratio {ranks} ranks / 1 rank: {dp[0] / one[0]:.2f}")
PY

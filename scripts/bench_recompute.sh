#!/usr/bin/env bash
# Activation checkpointing, side by side in one run: the same model trained with
# train.activation_checkpointing none, selective and full, interleaved round by round on
# the same cores. Reports each mode's activations_peak (memory.json, rank 0) beside the
# per-layer formula of docs/config.md, and the median step time (first 3 steps excluded,
# best round) with its ratio to none.
# Usage: scripts/bench_recompute.sh [STEPS=15] [ROUNDS=3] [--set key=value ...]
#   e.g. GPT-2 small shapes (memory, one step): scripts/bench_recompute.sh 1 1 --set model.n_layer=12 \
#        --set model.n_embd=768 --set model.n_head=12 --set model.block_size=1024 --set model.vocab_size=50304 \
#        --set train.global_batch_size=4 --set train.micro_batch_size=4
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
STEPS=${1:-15}
ROUNDS=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
echo "== $(nproc --all) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for mode in none selective full; do
    "$TERNION" train --config configs/gpt-tiny-cpu.yaml --set data.train="$WORK/data/fortunes.h5" --set data.val= \
      --set train.steps="$STEPS" --set log.interval=1 --set checkpoint.interval=0 --set train.eval_interval=0 \
      --set train.activation_checkpointing=$mode "$@" --set run.dir="$WORK/${mode}_$round" >/dev/null
  done
done
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(mode):
    ms = []
    for r in range(1, rounds + 1):
        rows = [json.loads(l) for l in open(f"{work}/{mode}_{r}/metrics.jsonl")]
        rows = rows[3:] or rows
        ms.append(statistics.median(x["ms"] for x in rows))
    peak = json.load(open(f"{work}/{mode}_1/memory.json"))["ranks"][0]["activations_peak"]
    return min(ms), peak
res = {m: load(m) for m in ("none", "selective", "full")}
print(f"{'mode':>10} {'activations_peak':>17} {'vs none':>8} {'step ms':>8} {'vs none':>8}")
for m, (ms, peak) in res.items():
    print(f"{m:>10} {peak:>17,} {peak / res['none'][1]:>8.2f} {ms:>8.1f} {ms / res['none'][0]:>8.2f}")
PY

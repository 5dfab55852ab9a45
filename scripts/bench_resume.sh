#!/usr/bin/env bash
# Resuming a GPT-2-small-shaped checkpoint (12 layers, C = 768, V = 50304: 124M parameters,
# 1.49 GB of f32 parameters and AdamW moments) into 8 ranks, and saving it again at ZeRO-3.
#  1. one process trains one step (block 64, one sample) and checkpoints it;
#  2. 8 ranks resume it at dp 8 with ZeRO-3, train two steps checkpointing after the first,
#     asynchronously; 3. the same with synchronous saves; 4. at dp 2 x tp 2 x pp 2 (ZeRO-0).
# Reports rank 0's bytes read on resume (from its log) against the checkpoint's size / 8,
# and what the async save cost the loop (ckpt_block_ms at the step it started plus the next
# step's ckpt_wait_ms for its background copy of the state) against the sync save's.
# 8 ranks oversubscribe the cores: the ratio of blocking times is what is meaningful.
# Usage: scripts/bench_resume.sh [WORKDIR=/tmp/ternion_resume_bench]   (TERNION_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
WORK=${1:-/tmp/ternion_resume_bench}
rm -rf "$WORK"
mkdir -p "$WORK"
cmake --build "$BUILD" --target ternion >/dev/null
TERNION=$BUILD/src/cli/ternion
bash scripts/prepare_fortunes.sh "$TERNION" "$WORK/data" >/dev/null 2>&1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "== $(nproc --all) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
MODEL=(--config configs/gpt-tiny-cpu.yaml --set data.train="$WORK/data/fortunes.h5" --set data.val=
       --set model.vocab_size=50304 --set model.n_layer=12 --set model.n_embd=768 --set model.n_head=12
       --set model.block_size=64 --set train.global_batch_size=8 --set train.micro_batch_size=1
       --set train.eval_interval=0 --set log.interval=1 --set checkpoint.interval=1 --set checkpoint.keep=1)
"$TERNION" train "${MODEL[@]}" --set train.steps=1 --set run.dir="$WORK/one" > "$WORK/one.log"
SRC="$WORK/one/checkpoints/step_00000001"
SIZE=$(du -sb "$SRC" | cut -f1)
resume() {  # name, then --set arguments
  local name=$1
  shift
  mpirun --oversubscribe -np 8 --bind-to none "$TERNION" train "${MODEL[@]}" --set train.steps=3 \
    --set run.dir="$WORK/$name" --resume "$SRC" "$@" > "$WORK/$name.log"
}
resume zero3_async --set parallel.zero_stage=3 --set checkpoint.async=true
resume zero3_sync --set parallel.zero_stage=3 --set checkpoint.async=false
resume dp2_tp2_pp2 --set parallel.dp=2 --set parallel.tp=2 --set parallel.pp=2
python3 - "$WORK" "$SIZE" <<'PY'
import json, re, sys
work, size = sys.argv[1], int(sys.argv[2])
print(f"checkpoint: {size} bytes on disk (one process, 1 rank file); size / 8 = {size // 8}")
print(f"{'resumed as':>22} {'rank 0 read':>12} {'/ (size/8)':>10}")
for name in ("zero3_async", "dp2_tp2_pp2"):
    log = open(f"{work}/{name}.log").read()
    got = int(re.search(r"rank 0 read (\d+) of", log).group(1))
    print(f"{name:>22} {got:>12} {got / (size / 8):>10.3f}")
def cost(name):  # the save after step 2 (not the last step's, which always waits to commit)
    rows = {r["step"]: r for r in (json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl"))}
    return rows[1]["ckpt_block_ms"], max(rows[2].get("ckpt_wait_ms", 0), 0)
(ab, aw), (sb, _) = cost("zero3_async"), cost("zero3_sync")
print(f"ZeRO-3, 8 ranks: the async save blocked the loop {ab:.1f} + {aw:.1f} ms (start + wait for its copy), "
      f"the sync save {sb:.1f} ms: {(ab + aw) / sb:.3f} of it")
PY

#!/usr/bin/env bash
# SIGKILL at random moments of a run that checkpoints every step (a save is almost always
# in flight): after every kill, `latest` must name a complete checkpoint whose checksums
# verify, and the next run must resume from it.
# Usage: kill_during_save.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$WORK"
mkdir -p "$WORK"
head -c 400000 /usr/share/common-licenses/GPL-3 > "$WORK/corpus.txt" 2>/dev/null || \
  python3 -c "import sys; sys.stdout.write(('the quick brown fox jumps over the lazy dog. ' * 5000))" > "$WORK/corpus.txt"
"$TERNION" prepare --input "$WORK/corpus.txt" --output "$WORK/corpus.h5" --val-fraction 0.05 >/dev/null 2>&1

ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" --set data.train="$WORK/corpus.h5"
      --set data.val= --set model.n_layer=4 --set model.n_embd=192 --set model.n_head=4
      --set model.block_size=32 --set train.global_batch_size=4 --set train.micro_batch_size=4
      --set train.steps=100000 --set checkpoint.interval=1 --set checkpoint.keep=2 --set log.interval=1000)
committed=0
for round in $(seq 1 6); do
  "$TERNION" train "${ARGS[@]}" > "$WORK/log_$round.txt" 2>&1 &
  pid=$!
  # 1.5 s .. 4 s: past start-up, into the stream of saves.
  sleep "$(python3 -c "import random; random.seed($round); print(round(random.uniform(1.5, 4.0), 2))")"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  latest_file="$WORK/run/checkpoints/latest"
  if [ -f "$latest_file" ]; then
    name=$(cat "$latest_file")
    if ! "$TERNION" checkpoint inspect "$WORK/run/checkpoints/$name" > "$WORK/inspect_$round.txt" 2>&1; then
      echo "FAIL round $round: latest names $name, which does not verify:"; cat "$WORK/inspect_$round.txt"; exit 1
    fi
    committed=$((committed + 1))
    if [ "$round" -gt 1 ] && ! grep -q "resumed from" "$WORK/log_$round.txt"; then
      if [ -n "$(grep -l "resumed from\|parameters" "$WORK/log_$round.txt")" ]; then
        echo "FAIL round $round: a checkpoint existed but the run did not resume:"; cat "$WORK/log_$round.txt"; exit 1
      fi
    fi
    echo "round $round: killed; latest = $name verifies"
  else
    echo "round $round: killed before the first commit"
  fi
done
[ "$committed" -ge 3 ] || { echo "FAIL: only $committed rounds had a committed checkpoint"; exit 1; }
# The kills landed at different points: the runs made progress between them.
distinct=$(cat "$WORK"/inspect_*.txt | grep -c "^checkpoint " || true)
steps=$(grep -h "^  step " "$WORK"/inspect_*.txt | sort -u | wc -l)
[ "$steps" -ge 3 ] || { echo "FAIL: training did not progress across kills ($steps distinct steps in $distinct inspections)"; exit 1; }
echo "kill during save: ok"

#!/usr/bin/env bash
# SIGKILL at random moments of a run that checkpoints every step (a save is almost always
# in flight): after every kill, `latest` must name a complete checkpoint whose checksums
# verify, and a run started after a commit must resume from it (one started before the
# first commit must start fresh). With NP > 1 the run is NP ranks under mpirun with the
# extra --set arguments given (ZeRO-3: every dp rank writes its own shard), and every rank is
# killed at once, as when a node dies.
# Usage: kill_during_save.sh TERNION WORKDIR [NP [--set KEY=VALUE ...]]
set -euo pipefail
TERNION=$1
WORK=$2
NP=${3:-1}
EXTRA=("${@:4}")
LAUNCH=()
if [ "$NP" -gt 1 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  LAUNCH=(mpirun --oversubscribe -np "$NP")
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$WORK"
mkdir -p "$WORK"
head -c 400000 /usr/share/common-licenses/GPL-3 > "$WORK/corpus.txt" 2>/dev/null || \
  python3 -c "import sys; sys.stdout.write(('the quick brown fox jumps over the lazy dog. ' * 5000))" > "$WORK/corpus.txt"
"$TERNION" prepare --input "$WORK/corpus.txt" --output "$WORK/corpus.h5" --val-fraction 0.05 >/dev/null 2>&1

ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" --set data.train="$WORK/corpus.h5"
      --set data.val= --set model.n_layer=4 --set model.n_embd=192 --set model.n_head=4
      --set model.block_size=32 --set train.global_batch_size=4 --set train.micro_batch_size=4
      --set train.steps=100000 --set checkpoint.interval=1 --set checkpoint.keep=2 --set log.interval=1000
      "${EXTRA[@]}")
# Whether a run must resume is decided by what was committed before it started (`latest`
# then), not by what `latest` says after the kill: a run that starts fresh may commit its
# first checkpoint before it is killed.
latest_file="$WORK/run/checkpoints/latest"
step_of() { echo $((10#${1#step_})); }
committed=0  # rounds that ended with a committed checkpoint
resumed=0    # rounds whose log shows the resume from the checkpoint committed before them
for round in $(seq 1 6); do
  before=$(cat "$latest_file" 2>/dev/null || true)
  log="$WORK/log_$round.txt"
  "${LAUNCH[@]}" "$TERNION" train "${ARGS[@]}" > "$log" 2>&1 &
  pid=$!
  # 1.5 s .. 4 s past start-up (mpirun's adds a second), into the stream of saves.
  sleep "$(python3 -c "import random; random.seed($round); print(round(random.uniform(1.5, 4.0) + ($NP > 1), 2))")"
  pkill -9 -f -- "run.dir=$WORK/run" 2>/dev/null || true  # every rank at once
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  after=$(cat "$latest_file" 2>/dev/null || true)

  # What was committed stays committed, verifies, and never goes back in steps (a run that
  # failed to resume would start again at step 1 and commit step_00000001).
  if [ -n "$before" ] && [ -z "$after" ]; then
    echo "FAIL round $round: latest named $before before the run and nothing after the kill"; exit 1
  fi
  if [ -n "$after" ]; then
    if ! "$TERNION" checkpoint inspect "$WORK/run/checkpoints/$after" > "$WORK/inspect_$round.txt" 2>&1; then
      echo "FAIL round $round: latest names $after, which does not verify:"; cat "$WORK/inspect_$round.txt"; exit 1
    fi
    if [ -n "$before" ] && [ "$(step_of "$after")" -lt "$(step_of "$before")" ]; then
      echo "FAIL round $round: latest went back from $before to $after: the run did not resume"; cat "$log"; exit 1
    fi
    committed=$((committed + 1))
  fi

  # The start-up lines (the resume, then the model size) are flushed together once start-up
  # is over; a kill before that leaves no record of it to check.
  if grep -q " parameters, " "$log"; then
    if [ -n "$before" ]; then
      if ! grep -q "resumed from .*/$before at step $(step_of "$before")" "$log"; then
        echo "FAIL round $round: $before was committed before the run started, but it did not resume from it:"
        cat "$log"; exit 1
      fi
      resumed=$((resumed + 1))
    elif grep -q "resumed from" "$log"; then
      echo "FAIL round $round: nothing was committed before the run, yet it resumed:"; cat "$log"; exit 1
    fi
  fi
  echo "round $round: started from ${before:-nothing}; killed; latest = ${after:-none}${after:+ verifies}"
done
[ "$committed" -ge 3 ] || { echo "FAIL: only $committed rounds had a committed checkpoint"; exit 1; }
[ "$resumed" -ge 1 ] || { echo "FAIL: no round was seen resuming (every kill landed in start-up)"; exit 1; }
# The kills landed at different points: the runs made progress between them.
distinct=$(cat "$WORK"/inspect_*.txt | grep -c "^checkpoint " || true)
steps=$(grep -h "^  step " "$WORK"/inspect_*.txt | sort -u | wc -l)
[ "$steps" -ge 3 ] || { echo "FAIL: training did not progress across kills ($steps distinct steps in $distinct inspections)"; exit 1; }
echo "kill during save: ok"

#!/usr/bin/env bash
# Data-parallel run under mpirun -np 2 that checkpoints every step; one rank is killed with
# SIGKILL mid-run. Every other rank must exit (non-zero) within the timeout instead of
# hanging (a timeout, if one fires before mpirun ends the job, names the killed rank as not
# arriving, and only it), `latest` must name a checkpoint that verifies, and a new mpirun
# resumes from it.
# Usage: dp_kill_rank.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export TERNION_COMM_TIMEOUT_S=20
e2e_fresh_workdir
e2e_prepare_corpus 6000

ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" --set data.train="$WORK/corpus.h5"
      --set data.val= --set model.n_layer=2 --set model.n_embd=64 --set model.n_head=2
      --set model.block_size=32 --set train.global_batch_size=4 --set train.micro_batch_size=2
      --set train.steps=100000 --set checkpoint.interval=1 --set checkpoint.keep=2 --set log.interval=1)
mpirun --oversubscribe -np 2 "$TERNION" train "${ARGS[@]}" > "$WORK/log_1.txt" 2>&1 &
launcher=$!
# Wait for a few committed steps, then kill the rank that is not rank 0's parent-most child.
# (mpirun forwards the ranks' output in blocks: watch the checkpoints, not the log.)
for _ in $(seq 1 120); do
  latest=$(cat "$WORK/run/checkpoints/latest" 2>/dev/null || true)
  if [ -n "$latest" ] && [ "$((10#${latest#step_}))" -ge 3 ]; then break; fi
  sleep 0.5
done
victim=$(pgrep -P "$launcher" -f "ternion train" | tail -1)
[ -n "$victim" ] || { echo "FAIL: no rank process found"; cat "$WORK/log_1.txt"; exit 1; }
victim_rank=$(tr '\0' '\n' < "/proc/$victim/environ" | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
start=$(date +%s)
kill -9 "$victim"
status=0
wait "$launcher" || status=$?
elapsed=$(( $(date +%s) - start ))
[ "$status" -ne 0 ] || { echo "FAIL: mpirun exited 0 after a rank was killed"; exit 1; }
[ "$elapsed" -le 60 ] || { echo "FAIL: the job took ${elapsed}s to end after the kill"; exit 1; }
sleep 1
if pgrep -f "ternion train .*$WORK/run" >/dev/null; then
  echo "FAIL: ranks still running after the kill"; pgrep -af "ternion train"; exit 1
fi
echo "killed rank pid $victim (world rank $victim_rank): job ended in ${elapsed}s with status $status"
if grep -q "timed out after" "$WORK/log_1.txt"; then
  grep -q "world rank $victim_rank did not arrive" "$WORK/log_1.txt" && ! grep -Eq "world ranks [0-9,-]+ did not arrive" "$WORK/log_1.txt" \
    || { echo "FAIL: a timeout that does not name world rank $victim_rank alone as not arriving"; cat "$WORK/log_1.txt"; exit 1; }
fi
grep -q "layout dp=2" "$WORK/log_1.txt" || { echo "FAIL: no dp=2 layout line"; cat "$WORK/log_1.txt"; exit 1; }

name=$(cat "$WORK/run/checkpoints/latest")
"$TERNION" checkpoint inspect "$WORK/run/checkpoints/$name" > "$WORK/inspect.txt" 2>&1 || {
  echo "FAIL: latest names $name, which does not verify:"; cat "$WORK/inspect.txt"; exit 1; }
step=$(sed -n 's/^  step \([0-9]*\).*/\1/p' "$WORK/inspect.txt" | head -1)
echo "latest = $name verifies (step $step)"

# Resume on two ranks, a few more steps.
target=$((step + 3))
mpirun --oversubscribe -np 2 "$TERNION" train "${ARGS[@]}" --set train.steps=$target > "$WORK/log_2.txt" 2>&1 || {
  echo "FAIL: the resumed run failed:"; cat "$WORK/log_2.txt"; exit 1; }
grep -q "resumed from .*$name at step $step" "$WORK/log_2.txt" || {
  echo "FAIL: the second run did not resume from $name:"; cat "$WORK/log_2.txt"; exit 1; }
grep -q "^step .*$target/$target" "$WORK/log_2.txt" || { echo "FAIL: resumed run did not reach step $target"; exit 1; }
echo "dp kill rank: ok"

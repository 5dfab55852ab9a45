#!/usr/bin/env bash
# A rank that fails mid-step must end the whole job: every process exits, the job's status
# is non-zero, it happens within the communicator timeout (TERNION_COMM_TIMEOUT_S=5) plus
# start-up, and stderr says which rank or which call and group. The control (ok) must
# exit 0 having checked its sums and traffic count on every rank.
# Usage: comm_fault.sh MPIEXEC COMM_FAULT_TEST MODE   (MODE: ok, throw, kill, stall, tag)
set -uo pipefail
MPIEXEC=$1
BIN=$2
MODE=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export TERNION_COMM_TIMEOUT_S=5
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
start=$(date +%s)
timeout --kill-after=5 90 "$MPIEXEC" --oversubscribe -np 4 "$BIN" "$MODE" > "$LOG" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
fail() { echo "FAIL ($MODE): $*"; echo "---- job output (rc=$rc, ${elapsed}s) ----"; cat "$LOG"; exit 1; }

[ "$rc" -ne 124 ] && [ "$rc" -ne 137 -o "$elapsed" -lt 90 ] || fail "the job hung and was stopped by the 90 s guard"
# 5 s of timeout, start-up and teardown of four ranks on a loaded machine.
[ "$elapsed" -le 40 ] || fail "took ${elapsed}s (limit 40)"
case "$MODE" in
  ok)
    [ "$rc" -eq 0 ] || fail "clean run exited $rc"
    grep -q "comm_fault_test ok: all steps done, sums checked" "$LOG" || fail "clean run did not finish and check its steps" ;;
  throw)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank threw"
    grep -q "ternion: rank 1: \[step\] injected failure at step 2" "$LOG" || fail "no error naming rank 1" ;;
  kill)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank was killed"
    grep -Eq "all_reduce timed out after 5s in group world \(world ranks 0,1,2,3\)|process rank 1 .*exited on signal 9" "$LOG" \
      || fail "neither a timeout naming the collective nor mpirun's report of rank 1's death" ;;
  stall)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank stalled"
    grep -Eq "ternion: rank [023]: all_reduce timed out after 5s in group world \(world ranks 0,1,2,3\); a peer died or never arrived" "$LOG" \
      || fail "no timeout error naming the collective and the group" ;;
  tag)
    [ "$rc" -ne 0 ] || fail "exit status 0 after receives were issued out of order"
    grep -Eq "ternion: rank 1: recv in group world \(world ranks 0,1,2,3\): a receive of 4096 elements with tag 2 from group rank 0 got the peer's next message: 4096 elements with tag 1" "$LOG" \
      || fail "no error naming the receive, the group and both tags" ;;
  *) fail "unknown mode" ;;
esac
echo "comm fault $MODE: ok (exit $rc after ${elapsed}s)"

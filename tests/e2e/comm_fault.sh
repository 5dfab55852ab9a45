#!/usr/bin/env bash
# A rank that fails mid-step must end the whole job: every process exits, the job's status
# is non-zero, it happens within the communicator timeout (TERNION_COMM_TIMEOUT_S=5) plus
# start-up, and stderr says which rank or which call and group; a timeout names the rank
# that did not arrive, and no rank blames one that did. The control (ok) must exit 0 having
# checked its sums and traffic count on every rank.
# The *_slowkill modes repeat a fault with every rank ignoring SIGTERM and Open MPI waiting
# 7 s before its SIGKILL, so that the other ranks' own waits end too (timeout 3 s), and
# check what they say: after an error, that rank's error and no timeout; a rank stopped
# and then resumed (Open MPI sends SIGCONT before killing), that it was the late one.
# pause: rank 1 is stopped inside a collective past its own deadline and resumed here before
# the others arrive; the run must end as ok does (a pause is not held against the peers).
# Usage: comm_fault.sh MPIEXEC COMM_FAULT_TEST MODE
#   (MODE: ok, throw, kill, stall, stop, tag, recv, pause, throw_slowkill, stop_slowkill)
set -uo pipefail
MPIEXEC=$1
BIN=$2
MODE=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export TERNION_COMM_TIMEOUT_S=5
FAULT=$MODE
EXTRA=()
if [[ $MODE == *_slowkill ]]; then
  FAULT=${MODE%_slowkill}
  export TERNION_COMM_TIMEOUT_S=3 COMM_FAULT_IGNORE_SIGTERM=1
  EXTRA=(--mca odls_base_sigkill_timeout 7)
fi
LOG=$(mktemp)
PIDFILE=$(mktemp -u)
export COMM_FAULT_PIDFILE=$PIDFILE  # the stop fault writes its pid here before stopping

# The stopped rank, if it is still there (a zombie is not: it has exited).
stopped_rank_alive() {
  [ -s "$PIDFILE" ] || return 1
  local pid state
  pid=$(cat "$PIDFILE")
  grep -q comm_fault_test "/proc/$pid/cmdline" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ]
}
cleanup() {
  if stopped_rank_alive; then
    kill -CONT "$(cat "$PIDFILE")" 2>/dev/null
    kill -KILL "$(cat "$PIDFILE")" 2>/dev/null
  fi
  rm -f "$LOG" "$PIDFILE"
}
trap cleanup EXIT

start=$(date +%s)
timeout --kill-after=5 90 "$MPIEXEC" --oversubscribe "${EXTRA[@]}" -np 4 "$BIN" "$FAULT" > "$LOG" 2>&1 &
job=$!
paused=""
if [ "$MODE" = pause ]; then
  # Rank 1 stops 0.3 s into its call (deadline 5 s); resume it 5.7 s later, 1 s before the
  # others arrive.
  for _ in $(seq 1 300); do
    if stopped_rank_alive && [ "$(awk '{print $3}' "/proc/$(cat "$PIDFILE")/stat")" = T ]; then paused=yes; break; fi
    sleep 0.1
  done
  sleep 5.7
  [ -s "$PIDFILE" ] && kill -CONT "$(cat "$PIDFILE")" 2>/dev/null
fi
wait "$job"
rc=$?
elapsed=$(( $(date +%s) - start ))
fail() { echo "FAIL ($MODE): $*"; echo "---- job output (rc=$rc, ${elapsed}s) ----"; cat "$LOG"; exit 1; }

[ "$rc" -ne 124 ] && [ "$rc" -ne 137 -o "$elapsed" -lt 90 ] || fail "the job hung and was stopped by the 90 s guard"
# The timeout, start-up and teardown of four ranks on a loaded machine (slowkill: two of
# Open MPI's 7 s waits as well).
[ "$elapsed" -le 40 ] || fail "took ${elapsed}s (limit 40)"
sleep 0.5
! stopped_rank_alive || fail "the stopped rank (pid $(cat "$PIDFILE")) outlived the job"

WORLD='group world \(world ranks 0,1,2,3\) at call #3'
# Whoever names ranks as not arriving names only rank 1.
blames_others() { grep -Eq "world ranks? ([0-9]+[,-])*[023](,[0-9]+)* did not arrive" "$LOG"; }
case "$MODE" in
  ok)
    [ "$rc" -eq 0 ] || fail "clean run exited $rc"
    grep -q "comm_fault_test ok: all steps done, sums checked" "$LOG" || fail "clean run did not finish and check its steps" ;;
  throw)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank threw"
    grep -q "ternion: rank 1: \[step\] injected failure at step 2" "$LOG" || fail "no error naming rank 1"
    ! grep -q "timed out" "$LOG" || fail "a rank claims a timeout although rank 1 failed with an error" ;;
  kill)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank was killed"
    grep -Eq "\[all_reduce\] timed out after 5 s in $WORLD: world rank 1 did not arrive|process rank 1 .*exited on signal 9" "$LOG" \
      || fail "neither a timeout naming rank 1 as not arriving nor mpirun's report of rank 1's death"
    ! blames_others || fail "a rank other than 1 named as not arriving" ;;
  stall)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank stalled"
    grep -Eq "ternion: rank [023]: \[all_reduce\] timed out after 5 s in $WORLD: world rank 1 did not arrive \(it answers but has issued only 2 of this group's calls.*\); this rank and world ranks [023],[023] were waiting$" "$LOG" \
      || fail "no timeout naming rank 1 as alive but not arriving, and the others as waiting"
    ! blames_others || fail "a rank other than 1 named as not arriving" ;;
  stop)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank was stopped"
    [ -s "$PIDFILE" ] || fail "rank 1 did not stop itself"
    grep -Eq "ternion: rank [023]: \[all_reduce\] timed out after 5 s in $WORLD: world rank 1 did not arrive \(no answer within 1 s: stalled or dead\); this rank and world ranks [023],[023] were waiting$" "$LOG" \
      || fail "no timeout naming the stopped rank 1 as not arriving, and the others as waiting"
    ! blames_others || fail "a rank other than 1 named as not arriving" ;;
  pause)
    [ -n "$paused" ] || fail "rank 1 was never seen stopped"
    [ "$rc" -eq 0 ] || fail "the run failed after rank 1 was stopped and resumed inside a call (exit $rc)"
    grep -q "comm_fault_test pause: all steps done, sums checked" "$LOG" || fail "the run did not finish and check its steps" ;;
  recv)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a receive never matched"
    grep -Eq "ternion: rank 0: \[recv\] timed out after 5 s in group world \(world ranks 0,1,2,3\): the receive from world rank 1 did not complete; world rank 1 answers but has not posted the matching side" "$LOG" \
      || fail "no timeout naming the receive and rank 1 as alive"
    ! grep -Eq "ternion: rank [0-3]: .*(arrived late|world ranks? ([0-9]+[,-])*[23](,[0-9]+)* did not arrive)" "$LOG" \
      || fail "a rank blames one that arrived, or calls itself late" ;;
  tag)
    [ "$rc" -ne 0 ] || fail "exit status 0 after receives were issued out of order"
    grep -Eq "ternion: rank 1: recv in group world \(world ranks 0,1,2,3\): a receive of 4096 elements with tag 2 from group rank 0 got the peer's next message: 4096 elements with tag 1" "$LOG" \
      || fail "no error naming the receive, the group and both tags" ;;
  throw_slowkill)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank threw"
    grep -q "ternion: rank 1: \[step\] injected failure at step 2" "$LOG" || fail "no error naming rank 1"
    grep -Eq "ternion: rank [023]: \[all_reduce\] in $WORLD: stopped waiting: world rank 1 failed with an error \(see its message\)$" "$LOG" \
      || fail "the others' waits did not end naming rank 1's error"
    ! grep -q "timed out" "$LOG" || fail "a rank claims a timeout although rank 1 failed with an error" ;;
  stop_slowkill)
    [ "$rc" -ne 0 ] || fail "exit status 0 after a rank was stopped"
    grep -Eq "ternion: rank [023]: \[all_reduce\] timed out after 3 s in $WORLD: world rank 1 did not arrive" "$LOG" \
      || fail "no timeout naming rank 1 as not arriving"
    # The late rank may already be in the next call: it can finish its part of call #3 (the
    # others still waiting for what it sends last) before it is stopped.
    grep -Eq "ternion: rank 1: \[all_reduce\] in group world \(world ranks 0,1,2,3\) at call #[34]: this rank arrived late: world ranks? [0-9,]+ had already timed out waiting for it \(this process was not running for [0-9.]+ s: stopped" "$LOG" \
      || fail "the resumed rank 1 did not say that it was the late one"
    ! grep -Eq "ternion: rank 1: .*(did not arrive|timed out after)" "$LOG" || fail "the late rank 1 blames its peers"
    ! blames_others || fail "a rank other than 1 named as not arriving" ;;
  *) fail "unknown mode" ;;
esac
echo "comm fault $MODE: ok (exit $rc after ${elapsed}s)"

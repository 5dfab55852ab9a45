#!/usr/bin/env bash
# A disk that fills up, simulated without root by a file size limit (ulimit -f: a write past
# it fails with EFBIG, as one fails with ENOSPC on a full disk; SIGXFSZ is ignored, so the
# write fails instead of killing the process). Each failing command must exit with status 1
# and one error naming the file, never crash (HDF5 1.10 used to segfault at exit over a file
# it could not close) or print HDF5's error stack, and leave no temporary file behind; the
# last committed checkpoint must still verify and resume.
# Usage: disk_full.sh TERNION WORKDIR
set -uo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
e2e_fresh_workdir
e2e_prepare_corpus 3000 || { echo "FAIL: prepare"; exit 1; }
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# limited KIB OUT ERR CMD...: runs CMD with files limited to KIB KiB; returns its status.
limited() {
  local kib=$1 out=$2 err=$3
  shift 3
  (trap '' XFSZ; ulimit -f "$kib"; exec "$@") > "$out" 2> "$err"
}

# expect_clean_failure NAME STATUS ERR PATTERN: status 1, PATTERN on stderr, no crash, no
# HDF5 error stack.
expect_clean_failure() {
  local name=$1 status=$2 err=$3 pattern=$4 before=$failures
  [ "$status" -eq 1 ] || fail "$name: exit status $status, expected 1"
  if grep -qE "SIGSEGV|Segmentation fault|core dumped" "$err"; then fail "$name: crashed"; fi
  if grep -qE "HDF5-DIAG|#0[0-9][0-9]:" "$err"; then fail "$name: HDF5's error stack was printed"; fi
  grep -qE "$pattern" "$err" || fail "$name: no error matching /$pattern/ on stderr"
  [ "$failures" -eq "$before" ] || { echo "--- stderr of $name:"; cat "$err"; }
}

ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" --set data.train="$WORK/corpus.h5"
      --set data.val= --set model.n_layer=1 --set model.n_embd=32 --set model.n_head=2
      --set model.block_size=16 --set train.global_batch_size=4 --set train.micro_batch_size=4
      --set checkpoint.interval=2 --set log.interval=1)

# 1. A committed checkpoint at step 2, then a save at step 4 on a disk too small for it.
"$TERNION" train "${ARGS[@]}" --set train.steps=2 > "$WORK/train_1.txt" 2>&1 || { echo "FAIL: first run"; exit 1; }
rank_kib=$(( $(stat -c %s "$WORK/run/checkpoints/step_00000002/rank_00000.h5") / 1024 ))
limited $((rank_kib / 2)) "$WORK/train_2.txt" "$WORK/train_2.err" "$TERNION" train "${ARGS[@]}" --set train.steps=4
expect_clean_failure "checkpoint save" $? "$WORK/train_2.err" \
  "save of step 4 failed.*not committed.*last complete checkpoint is intact"
grep -qE "cannot write '[^']*rank_00000.h5' at byte [0-9]+: File too large" "$WORK/train_2.err" \
  || fail "checkpoint save: the error does not name the rank file and the reason"
[ "$(cat "$WORK/run/checkpoints/latest")" = step_00000002 ] || fail "checkpoint save: latest moved"
leftovers=$(find "$WORK/run" -name '*.tmp*')
[ -z "$leftovers" ] || fail "checkpoint save: temporary files left: $leftovers"
"$TERNION" checkpoint inspect "$WORK/run" > "$WORK/inspect.txt" 2>&1 \
  || fail "checkpoint save: the last checkpoint does not verify: $(cat "$WORK/inspect.txt")"
grep -q "checksums: all .* verified" "$WORK/inspect.txt" || fail "checkpoint save: inspect did not verify"

# 2. With space again, the run resumes from the last checkpoint and finishes.
"$TERNION" train "${ARGS[@]}" --set train.steps=4 > "$WORK/train_3.txt" 2>&1 || fail "resume: exit status $?"
grep -q "resumed from .*step_00000002 at step 2" "$WORK/train_3.txt" || fail "resume: did not resume from step 2"

# 3. No periodic checkpoints (checkpoint.interval 0): the final weights do not fit.
model_kib=$(( $(stat -c %s "$WORK/run/model.h5") / 1024 ))
limited $((model_kib / 2)) "$WORK/train_4.txt" "$WORK/train_4.err" "$TERNION" train "${ARGS[@]}" \
  --set run.dir="$WORK/run0" --set checkpoint.interval=0 --set train.steps=2
expect_clean_failure "final weights" $? "$WORK/train_4.err" "cannot write '[^']*model.h5.tmp' at byte [0-9]+: File too large"
[ ! -e "$WORK/run0/model.h5" ] || fail "final weights: model.h5 exists"
[ ! -e "$WORK/run0/model.h5.tmp" ] || fail "final weights: model.h5.tmp left behind"

# 4. prepare: the train token file does not fit.
train_kib=$(( $(stat -c %s "$WORK/corpus.h5") / 1024 ))
limited $((train_kib / 2)) "$WORK/prepare.txt" "$WORK/prepare.err" "$TERNION" prepare --input "$WORK/corpus.txt" \
  --output "$WORK/full.h5" --val-fraction 0.05
expect_clean_failure "prepare" $? "$WORK/prepare.err" "cannot write '[^']*full.h5.tmp' at byte [0-9]+: File too large"
[ ! -e "$WORK/full.h5" ] || fail "prepare: full.h5 exists"
leftovers=$(find "$WORK" -maxdepth 1 -name 'full*.tmp')
[ -z "$leftovers" ] || fail "prepare: temporary files left: $leftovers"

# 5. The same limit without the shell ignoring SIGXFSZ: ternion ignores it itself, so the
#    write fails with EFBIG and is reported, instead of the signal killing the process.
(ulimit -f $((train_kib / 2)); exec "$TERNION" prepare --input "$WORK/corpus.txt" --output "$WORK/full2.h5" \
  --val-fraction 0.05) > "$WORK/prepare2.txt" 2> "$WORK/prepare2.err"
expect_clean_failure "prepare without the shell's trap" $? "$WORK/prepare2.err" \
  "cannot write '[^']*full2.h5.tmp' at byte [0-9]+: File too large"

# 6. metrics.jsonl cannot grow (no checkpoints to fail first): the run stops with an error
#    naming the file instead of losing its rows silently.
limited 2 "$WORK/metrics.txt" "$WORK/metrics.err" "$TERNION" train "${ARGS[@]}" --set run.dir="$WORK/run_metrics" \
  --set checkpoint.interval=0 --set train.steps=40
expect_clean_failure "metrics" $? "$WORK/metrics.err" "cannot write to [^ ]*metrics.jsonl at step [0-9]+ \\(disk full\\?\\)"

[ "$failures" -eq 0 ] || exit 1
echo "disk full: ok"

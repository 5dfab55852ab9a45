#!/usr/bin/env bash
# Outputs that would overwrite what a command reads are refused before anything is written:
# `checkpoint export --output` onto (or into) the checkpoint it reads, `prepare --output` or
# `--val-output` onto its input, also through a symbolic link. Each must exit 1 with an
# error naming both paths and leave the input byte for byte as it was; an export onto an
# existing directory must fail the same way and leave no temporary file.
# Usage: output_overlap.sh TERNION WORKDIR
set -uo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
e2e_fresh_workdir
e2e_prepare_corpus 1000 || { echo "FAIL: prepare"; exit 1; }
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

"$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" \
  --set data.train="$WORK/corpus.h5" --set data.val= --set model.n_layer=1 --set model.n_embd=32 \
  --set model.n_head=2 --set model.block_size=16 --set train.global_batch_size=4 \
  --set train.micro_batch_size=4 --set train.steps=2 --set checkpoint.interval=2 > "$WORK/train.txt" 2>&1 \
  || { echo "FAIL: train"; cat "$WORK/train.txt"; exit 1; }
CKPT="$WORK/run/checkpoints/step_00000002"
RANK="$CKPT/rank_00000.h5"
ln -s "$RANK" "$WORK/rank_link.h5"
ln -s "$WORK/corpus.txt" "$WORK/corpus_link.h5"
sums() { find "$WORK/run/checkpoints" "$WORK/corpus.txt" -type f -print0 | sort -z | xargs -0 md5sum; }
before=$(sums)

# refused NAME PATTERN CMD...: CMD exits 1 and prints PATTERN; nothing it reads changed.
refused() {
  local name=$1 pattern=$2
  shift 2
  local err
  err=$("$TERNION" "$@" 2>&1 >/dev/null)
  local status=$?
  [ "$status" -eq 1 ] || fail "$name: exit status $status, expected 1"
  printf '%s\n' "$err" | grep -qE "$pattern" || fail "$name: error does not match /$pattern/: $err"
  [ "$(sums)" = "$before" ] || fail "$name: an input changed"
}

refused "export onto a rank file" "refusing to write '$RANK': it is inside the input directory '$CKPT'" \
  checkpoint export "$CKPT" --output "$RANK"
refused "export into the run's latest checkpoint" "refusing to write '$RANK': it is inside the input directory" \
  checkpoint export "$WORK/run" --output "$RANK"
refused "export through a link" "refusing to write '$WORK/rank_link.h5': it is inside the input directory" \
  checkpoint export "$CKPT" --output "$WORK/rank_link.h5"
refused "export onto the checkpoint directory" "refusing to write '$CKPT': it is the input '$CKPT'" \
  checkpoint export "$CKPT" --output "$CKPT"
"$TERNION" checkpoint inspect "$CKPT" > "$WORK/inspect.txt" 2>&1 || fail "the checkpoint no longer verifies"

mkdir -p "$WORK/outdir"
refused "export onto a directory" "cannot write weights to '$WORK/outdir': it is a directory" \
  checkpoint export "$CKPT" --output "$WORK/outdir"
[ ! -e "$WORK/outdir.tmp" ] || fail "export onto a directory: left $WORK/outdir.tmp"
[ -z "$(ls -A "$WORK/outdir")" ] || fail "export onto a directory: wrote into it"

refused "prepare onto its input" "refusing to write '$WORK/corpus.txt': it is the input '$WORK/corpus.txt'" \
  prepare --input "$WORK/corpus.txt" --output "$WORK/corpus.txt"
refused "prepare val onto its input" "refusing to write '$WORK/corpus.txt': it is the input" \
  prepare --input "$WORK/corpus.txt" --output "$WORK/other.h5" --val-output "$WORK/corpus.txt"
refused "prepare through a link" "refusing to write '$WORK/corpus_link.h5': it is the input '$WORK/corpus.txt'" \
  prepare --input "$WORK/corpus.txt" --output "$WORK/corpus_link.h5"
[ ! -e "$WORK/other.h5" ] && [ ! -e "$WORK/other_val.h5" ] || fail "prepare val onto its input: wrote other outputs"
leftovers=$(find "$WORK" -name '*.tmp*')
[ -z "$leftovers" ] || fail "temporary files left: $leftovers"

# Outputs beside the inputs still work.
"$TERNION" checkpoint export "$CKPT" --output "$WORK/outdir/model.h5" > /dev/null 2>&1 || fail "a plain export failed"
"$TERNION" prepare --input "$WORK/corpus.txt" --output "$WORK/again.h5" > /dev/null 2>&1 || fail "a plain prepare failed"

[ "$failures" -eq 0 ] || exit 1
echo "output overlap: ok"

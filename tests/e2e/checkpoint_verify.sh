#!/usr/bin/env bash
# `ternion checkpoint verify` on a tensor-parallel checkpoint (mpirun -np 2, tp = 2: every
# split tensor in several datasets over two rank files): a sound one passes (exit 0); a
# flipped byte, a truncated rank file, a missing rank file and a dataset missing from the
# manifest each fail (exit 1) with a report that names the file or the tensor.
# Usage: checkpoint_verify.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
e2e_fresh_workdir
e2e_prepare_corpus 2000
mpirun --oversubscribe -np 2 "$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" \
  --set data.train="$WORK/corpus.h5" --set data.val= --set model.n_layer=2 --set model.n_embd=32 \
  --set model.n_head=2 --set model.block_size=16 --set train.global_batch_size=4 --set train.micro_batch_size=2 \
  --set train.steps=4 --set checkpoint.interval=4 --set checkpoint.async=false --set log.interval=4 \
  --set parallel.tp=2 --set run.dir="$WORK/run" > "$WORK/train.txt" 2>&1 || { cat "$WORK/train.txt"; exit 1; }
CK="$WORK/run/checkpoints/step_00000004"
[ -f "$CK/rank_00001.h5" ] || { echo "FAIL: no checkpoint at $CK"; exit 1; }
fails=0
# expect NAME STATUS PATTERN DIR
expect() {
  local name=$1 want=$2 pattern=$3 dir=$4 out rc
  set +e
  out=$("$TERNION" checkpoint verify "$dir" 2>&1)
  rc=$?
  set -e
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, want $want: $out"; fails=$((fails + 1))
  elif ! printf '%s' "$out" | grep -qE "$pattern"; then
    echo "FAIL $name: no /$pattern/ in: $out"; fails=$((fails + 1))
  else
    echo "ok   $name: $(printf '%s' "$out" | head -2 | tr '\n' ' ')"
  fi
}
copy() { rm -rf "$WORK/$1"; cp -r "$CK" "$WORK/$1"; echo "$WORK/$1"; }
expect sound 0 "ok \(step 4;" "$CK"
# inspect shows which rank file holds which rows of a tensor-parallel tensor
"$TERNION" checkpoint inspect "$CK" > "$WORK/inspect.txt"
grep -qE "param/transformer.h.0.attn.c_attn.weight +f32 \[96, 32\] +rank_00000.h5: \[0:16, 0:32\] \[32:48, 0:32\] \[64:80, 0:32\]; rank_00001.h5: \[16:32, 0:32\]" \
  "$WORK/inspect.txt" || { cat "$WORK/inspect.txt"; echo "FAIL: inspect does not show the parts"; fails=$((fails + 1)); }
expect run_dir 0 "step_00000004: ok" "$WORK/run"

d=$(copy flipped)
size=$(stat -c %s "$d/rank_00001.h5")
python3 - "$d/rank_00001.h5" "$size" <<'PY'
import sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:  # the last bytes of the file are a dataset's data
    f.seek(size - 7)
    b = f.read(1)
    f.seek(size - 7)
    f.write(bytes([b[0] ^ 0x40]))
PY
expect flipped_byte 1 "rank_00001.h5: .*(xxh64|checksum)" "$d"

d=$(copy truncated)
truncate -s 4000 "$d/rank_00001.h5"
expect truncated 1 "cannot be read: .*rank_00001.h5" "$d"

d=$(copy missing)
rm "$d/rank_00000.h5"
expect missing_file 1 "cannot be read: .*rank_00000.h5" "$d"

d=$(copy gap)
python3 - "$d/manifest.yaml" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().split("\n")
i = next(i for i, l in enumerate(lines) if "param/transformer.h.1.mlp.c_fc.weight" in l)
del lines[i]
open(path, "w").write("\n".join(lines))
PY
expect coverage_gap 1 "param/transformer.h.1.mlp.c_fc.weight: .* elements .* are in no dataset, the first at \[" "$d"

[ "$fails" -eq 0 ] && echo "checkpoint verify: ok" || { echo "checkpoint verify: $fails failure(s)"; exit 1; }

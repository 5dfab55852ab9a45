#!/usr/bin/env bash
# A tensor-parallel run from the command line: mpirun -np 2 with parallel.tp=2 and sequence
# parallelism trains to the end, its model.h5 holds the weights in nanoGPT's global shapes
# (wte [vocab_size, C], not the padded rows), `ternion sample` reads it, and a layout the
# model cannot take (tp = 2 with sequence parallelism and an odd block_size) is refused on
# every rank with the keys named.
# Usage: tp_sample.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
e2e_fresh_workdir
e2e_prepare_corpus 3000
ARGS=(--config "$ROOT/configs/gpt-tiny-cpu.yaml" --set data.train="$WORK/corpus.h5" --set data.val=
      --set model.n_layer=2 --set model.n_embd=64 --set model.n_head=4 --set model.vocab_size=257
      --set train.global_batch_size=4 --set train.micro_batch_size=2 --set train.steps=12 --set log.interval=4
      --set parallel.tp=2 --set parallel.sequence_parallel=true)
mpirun --oversubscribe -np 2 "$TERNION" train "${ARGS[@]}" --set model.block_size=32 --set run.dir="$WORK/run" \
  > "$WORK/log.txt" 2>&1 || { cat "$WORK/log.txt"; echo "FAIL: the tp run failed"; exit 1; }
grep -q "layout dp=1 tp=2 pp=1" "$WORK/log.txt" || { cat "$WORK/log.txt"; echo "FAIL: not tp=2"; exit 1; }
python3 - "$WORK/run/model.h5" <<'PY' || { echo "FAIL: model.h5 shapes"; exit 1; }
import subprocess, sys
out = subprocess.run(["h5ls", "-r", sys.argv[1]], capture_output=True, text=True, check=True).stdout
line = next(l for l in out.splitlines() if "transformer.wte.weight" in l)
assert "{257, 64}" in line, line
print("model.h5:", line.strip())
PY
"$TERNION" sample --checkpoint "$WORK/run/model.h5" --prompt "the " --tokens 32 --seed 1 > "$WORK/sample.txt"
[ "$(wc -c < "$WORK/sample.txt")" -ge 32 ] || { echo "FAIL: sample too short"; exit 1; }
head -c 80 "$WORK/sample.txt"; echo
if mpirun --oversubscribe -np 2 "$TERNION" train "${ARGS[@]}" --set model.block_size=33 --set run.dir="$WORK/bad" \
  > "$WORK/bad.txt" 2>&1; then
  echo "FAIL: block_size 33 at tp = 2 with sequence parallelism was accepted"; exit 1
fi
n=$(grep -c "model.block_size = 33 must be divisible by parallel.tp = 2" "$WORK/bad.txt" || true)
[ "$n" -ge 2 ] || { cat "$WORK/bad.txt"; echo "FAIL: the error is not on every rank ($n)"; exit 1; }
echo "tp sample: ok"

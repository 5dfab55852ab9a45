#!/usr/bin/env bash
# launch/mpirun.sh on this machine: prints the mpirun command it runs, binds each of 2 ranks
# to its own core, and the run trains data-parallel on 2 ranks to the end.
# Usage: launch_mpirun.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
e2e_fresh_workdir
e2e_prepare_corpus 3000
"$ROOT/launch/mpirun.sh" --help | grep -q -- "--hostfile" || { echo "FAIL: no usage text"; exit 1; }
unset OMP_NUM_THREADS
NCCL_DEBUG=WARN "$ROOT/launch/mpirun.sh" -n 2 --ternion "$TERNION" -- \
  --config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" --set data.train="$WORK/corpus.h5" \
  --set data.val= --set model.n_layer=1 --set model.n_embd=32 --set model.n_head=2 \
  --set model.block_size=32 --set train.steps=20 --set log.interval=5 > "$WORK/log.txt" 2>&1 \
  || { cat "$WORK/log.txt"; echo "FAIL: launch/mpirun.sh failed"; exit 1; }
cat "$WORK/log.txt"
check() { grep -q -- "$1" "$WORK/log.txt" || { echo "FAIL: $2"; exit 1; }; }
check "^mpirun.sh: mpirun -np 2 " "the command is not printed"
check "-x NCCL_DEBUG" "NCCL_* is not forwarded"
if [ "$(nproc)" -ge 2 ]; then
  check "--map-by ppr:2:node:PE=$(( $(nproc) / 2 )) --bind-to core" "ranks are not given their own cores"
fi
check "layout dp=2 " "not data-parallel on 2 ranks"
check "ternion train: done" "the run did not finish"
[ "$(wc -l < "$WORK/run/metrics.jsonl")" -ge 4 ] || { echo "FAIL: metrics.jsonl is short"; exit 1; }
echo "launch mpirun: ok"

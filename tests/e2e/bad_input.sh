#!/usr/bin/env bash
# Bad input to `ternion train`: each case must exit non-zero with one clear error line
# that names the problem, and leave nothing behind in the run directory.
# Usage: bad_input.sh TERNION WORKDIR
set -uo pipefail
TERNION=$1
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$WORK"
mkdir -p "$WORK"
CONFIG="$ROOT/configs/gpt-tiny-cpu.yaml"
failures=0

# A small valid token file, a text file posing as HDF5, a .bin shard with a token >= vocab.
printf 'hello fortunes, hello tests. %.0s' $(seq 40) > "$WORK/small.txt"
"$TERNION" prepare --input "$WORK/small.txt" --output "$WORK/small.h5" --val-fraction 0.1 >/dev/null 2>&1 \
  || { echo "prepare failed" >&2; exit 1; }
echo "not hdf5" > "$WORK/fake.h5"
python3 - "$WORK/big_token.bin" <<'PY'
import struct, sys
tokens = [1, 2, 3, 300] * 64
header = [20240520, 1, len(tokens)] + [0] * 253
open(sys.argv[1], "wb").write(struct.pack("<256i", *header) + struct.pack(f"<{len(tokens)}H", *tokens))
PY
printf 'run:\n  dir: x\nmodel:\n  n_layer: [1, 2]\n' > "$WORK/wrong_type.yaml"

# expect NAME PATTERN ARGS...: the command fails, prints PATTERN on one line, writes nothing.
expect() {
  local name=$1 pattern=$2
  shift 2
  local run="$WORK/run_$name"
  local out
  out=$("$TERNION" train "$@" --set run.dir="$run" 2>&1 >/dev/null)
  local rc=$?
  local lines
  lines=$(printf '%s\n' "$out" | grep -c . || true)
  if [ $rc -eq 0 ]; then
    echo "FAIL $name: exit status 0"; failures=$((failures + 1))
  elif ! printf '%s' "$out" | grep -qE "$pattern"; then
    echo "FAIL $name: error does not match /$pattern/: $out"; failures=$((failures + 1))
  elif [ "$lines" -ne 1 ]; then
    echo "FAIL $name: expected one error line, got $lines: $out"; failures=$((failures + 1))
  elif [ -e "$run/model.h5" ] || [ -n "$(find "$run" -name '*.tmp*' 2>/dev/null)" ]; then
    echo "FAIL $name: left files in $run"; failures=$((failures + 1))
  else
    echo "ok   $name: $out"
  fi
}

expect missing_data "no such file.*missing.h5" --config "$CONFIG" --set data.train="$WORK/missing.h5"
expect not_hdf5 "fake.h5.*not an HDF5 file" --config "$CONFIG" --set data.train="$WORK/fake.h5"
expect missing_val "no such file.*nothing_val.h5" --config "$CONFIG" --set data.train="$WORK/small.h5" \
  --set data.val="$WORK/nothing_val.h5"
expect heads "n_embd must be divisible by model.n_head" --config "$CONFIG" --set model.n_embd=130
expect block_too_large "block_size 4096 needs 4097 tokens.*small.h5" --config "$CONFIG" \
  --set data.train="$WORK/small.h5" --set data.val= --set model.block_size=4096
expect vocab_data "vocab_size 256 > model.vocab_size 100" --config "$CONFIG" \
  --set data.train="$WORK/small.h5" --set data.val= --set model.vocab_size=100
expect token_id "token.*300.*vocab" --config "$CONFIG" --set data.train="$WORK/big_token.bin" \
  --set data.val= --set model.block_size=16 --set train.steps=2
expect unknown_key "unknown key 'optim.lrr'" --config "$CONFIG" --set optim.lrr=1
expect wrong_type "wrong_type.yaml:4.*model.n_layer" --config "$WORK/wrong_type.yaml"
expect missing_config "cannot read config file.*nope.yaml" --config "$WORK/nope.yaml"
expect bad_batch "global_batch_size must be divisible by train.micro_batch_size" --config "$CONFIG" \
  --set train.micro_batch_size=5
expect bad_init "init_from.*no_weights.h5|no_weights.h5" --config "$CONFIG" --set data.train="$WORK/small.h5" \
  --set data.val= --set model.block_size=16 --set model.init_from="$WORK/no_weights.h5"

[ $failures -eq 0 ] && echo "bad input: ok" || { echo "bad input: $failures failure(s)"; exit 1; }

#!/usr/bin/env bash
# The command line itself: `ternion COMMAND --help` prints the command's usage on stdout
# and exits 0 for every command; `sample` refuses a non-positive --tokens and weights that
# are not finite; `plot` skips a truncated last line of metrics.jsonl with a warning but
# refuses a corrupt line before it; config errors on a huge value or deep nesting stay short
# and say what is wrong.
# Usage: cli.sh TERNION WORKDIR
set -uo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
e2e_fresh_workdir
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# expect_help NAME WORDS...: exit 0, the usage of WORDS[0] on stdout, nothing on stderr.
expect_help() {
  local name=$1 cmd=$2
  shift
  "$TERNION" "$@" > "$WORK/help.out" 2> "$WORK/help.err"
  local rc=$?
  if [ $rc -ne 0 ]; then
    fail "$name: exit status $rc: $(head -c 300 "$WORK/help.err")"
  elif ! head -n 1 "$WORK/help.out" | grep -q "^usage: ternion $cmd"; then
    fail "$name: stdout does not start with 'usage: ternion $cmd': $(head -c 300 "$WORK/help.out")"
  elif [ -s "$WORK/help.err" ]; then
    fail "$name: wrote to stderr: $(head -c 300 "$WORK/help.err")"
  else
    echo "ok   $name"
  fi
}

# refuse NAME PATTERN WORDS...: non-zero exit, one stderr line matching PATTERN.
refuse() {
  local name=$1 pattern=$2
  shift 2
  "$TERNION" "$@" > "$WORK/refuse.out" 2> "$WORK/refuse.err"
  local rc=$?
  local lines
  lines=$(grep -c . "$WORK/refuse.err" || true)
  if [ $rc -eq 0 ]; then
    fail "$name: exit status 0"
  elif ! grep -qE -- "$pattern" "$WORK/refuse.err"; then
    fail "$name: error does not match /$pattern/: $(head -c 300 "$WORK/refuse.err")"
  elif [ "$lines" -ne 1 ]; then
    fail "$name: expected one error line, got $lines: $(head -c 300 "$WORK/refuse.err")"
  else
    echo "ok   $name: $(head -c 300 "$WORK/refuse.err")"
  fi
}

for cmd in train prepare sample checkpoint plot version selftest; do
  expect_help "$cmd --help" "$cmd" --help
  expect_help "$cmd -h" "$cmd" -h
done
expect_help "train --config FILE --help" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" --help
expect_help "prepare --input TXT --help" prepare --input "$WORK/none.txt" --help
expect_help "sample --prompt TEXT --help" sample --prompt hello --help
expect_help "checkpoint inspect --help" checkpoint inspect --help
expect_help "checkpoint export DIR --output F --help" checkpoint export "$WORK" --output x.h5 --help
expect_help "plot RUN_DIR --help" plot "$WORK" --help
# A value that happens to read --help is a value.
refuse "sample --prompt --help" "missing required option '--checkpoint'" sample --prompt --help

# A tiny model to sample from.
e2e_prepare_corpus 200
"$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" \
  --set data.train="$WORK/corpus.h5" --set data.val= --set model.n_layer=1 --set model.n_embd=32 \
  --set model.n_head=2 --set model.block_size=16 --set train.global_batch_size=4 \
  --set train.micro_batch_size=4 --set train.steps=2 --set log.interval=1 > "$WORK/train.log" 2>&1 \
  || { cat "$WORK/train.log"; echo "cli: training the tiny model failed"; exit 1; }
MODEL="$WORK/run/model.h5"

refuse "sample --tokens 0" "--tokens must be positive, got 0" sample --checkpoint "$MODEL" --tokens 0
refuse "sample --tokens -5" "--tokens must be positive, got -5" sample --checkpoint "$MODEL" --tokens -5
refuse "sample --tokens 2.5" "option '--tokens' needs a whole number, got '2.5'" \
  sample --checkpoint "$MODEL" --tokens 2.5
refuse "sample --top-k -1" "--top-k must be >= 0" sample --checkpoint "$MODEL" --top-k -1
if "$TERNION" sample --checkpoint "$MODEL" --prompt "the " --tokens 5 > "$WORK/sample.txt" 2>&1; then
  echo "ok   sample --tokens 5"
else
  fail "sample --tokens 5: $(cat "$WORK/sample.txt")"
fi

# poison COPY TENSOR VALUE: a copy of the model with the tensor's element 3 set to VALUE (a
# float32 literal for Python's struct). Weights are contiguous datasets, so the element
# lies at the dataset's file offset (h5dump -p) plus 12 bytes.
poison() {
  cp "$MODEL" "$1"
  local offset
  offset=$(h5dump -p -H -d "/$2" "$1" | sed -n 's/.*OFFSET \([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$offset" ] || { echo "cli: no offset for $2 in $1"; exit 1; }
  python3 - "$1" "$offset" "$3" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]) + 12)
    f.write(struct.pack("<f", float(sys.argv[3])))
PY
}
TENSOR=$(h5ls "$MODEL" | awk '$2 == "Dataset" { print $1 }' | sort | tail -n 1)
poison "$WORK/nan.h5" "$TENSOR" nan
poison "$WORK/inf.h5" "$TENSOR" -inf
refuse "sample NaN weights" "tensor '$TENSOR' is not finite: 1 of its [0-9]+ values are NaN or inf .*element 3, is nan" \
  sample --checkpoint "$WORK/nan.h5" --tokens 5
refuse "sample inf weights" "tensor '$TENSOR' is not finite.*element 3, is -inf" \
  sample --checkpoint "$WORK/inf.h5" --tokens 5

# metrics.jsonl with a last line cut short, as a run killed while writing it leaves it.
mkdir -p "$WORK/cut"
row() { printf '{"step": %d, "loss": %s, "lr": %s, "tokens_per_sec": %d, "comm_bytes": {"dp": 0, "tp": 0}}\n' \
  "$1" "$2" "$2e-4" "$((900 + 10 * $1))"; }
{ row 0 5.5; row 1 5.25; row 2 5.0; printf '{"step": 3, "loss": 4.9, "lr": 0.0'; } > "$WORK/cut/metrics.jsonl"
if "$TERNION" plot "$WORK/cut" > "$WORK/cut.out" 2> "$WORK/cut.err"; then
  if ! grep -q "warning: skipping the last line of .*metrics.jsonl.*metrics.jsonl:4" "$WORK/cut.err"; then
    fail "plot of a truncated last line: no warning naming line 4: $(cat "$WORK/cut.err")"
  elif [ "$(grep -vc '^#' "$WORK/cut/plots/metrics.dat")" -ne 3 ] || [ ! -s "$WORK/cut/plots/loss.png" ]; then
    fail "plot of a truncated last line: expected 3 rows and loss.png"
  else
    echo "ok   plot of a truncated last line: $(cat "$WORK/cut.err")"
  fi
else
  fail "plot of a truncated last line failed: $(cat "$WORK/cut.err")"
fi
mkdir -p "$WORK/corrupt"
{ row 0 5.5; printf '{"step": 1, "loss": }\n'; row 2 5.0; } > "$WORK/corrupt/metrics.jsonl"
refuse "plot of a corrupt line before the last" "metrics.jsonl:2: key 'loss' is not a number" plot "$WORK/corrupt"

# Config errors stay readable: a 10 MB value is cut, deep nesting is named with its line.
python3 -c "print('precision: ' + 'x' * (10 << 20))" > "$WORK/huge.yaml"
refuse "config with a 10 MB value" "huge.yaml:1: precision must be one of fp32, bf16, fp16 \(got \"x{79}\.\.\. \(10485762 bytes\)\)" \
  train --config "$WORK/huge.yaml"
[ "$(wc -c < "$WORK/refuse.err")" -lt 1000 ] || fail "config with a 10 MB value: $(wc -c < "$WORK/refuse.err") bytes of error"
python3 -c "print('run:\n  seed: 1\n  dir: ' + '[' * 5000)" > "$WORK/deep.yaml"
refuse "config nested too deeply" "deep.yaml:3: YAML nested too deeply" train --config "$WORK/deep.yaml"

[ $failures -eq 0 ] && echo "cli: ok" || { echo "cli: $failures failure(s)"; exit 1; }

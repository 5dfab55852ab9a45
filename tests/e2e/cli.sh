#!/usr/bin/env bash
# The command line itself: `ternion COMMAND --help` prints the command's usage on stdout
# and exits 0 for every command.
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

[ $failures -eq 0 ] && echo "cli: ok" || { echo "cli: $failures failure(s)"; exit 1; }

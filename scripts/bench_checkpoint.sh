#!/usr/bin/env bash
# Checkpoint write throughput against the disk's own (dd with fsync, same filesystem, same
# byte count), and the blocking time of an async save against a sync one.
# Usage: scripts/bench_checkpoint.sh [DIR=/tmp/ternion_ckpt_bench] [N_PARAMS_MILLIONS=124]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/ternion_ckpt_bench}
N=${2:-124}
BUILD=${TERNION_BUILD_DIR:-build}
cmake --build "$BUILD" --target checkpoint_bench >/dev/null
mkdir -p "$DIR"
MB=$(python3 -c "print(int($N * 12))")  # 3 x 4 bytes per parameter, in MB
echo "== dd: $MB MB, 4 MiB blocks, conv=fsync, on $(df --output=source "$DIR" | tail -1)"
for i in 1 2; do
  dd if=/dev/zero of="$DIR/dd.bin" bs=4M count=$((MB * 1000000 / 4194304)) conv=fsync 2>&1 | tail -1
  rm -f "$DIR/dd.bin"
done
echo "== ternion checkpoint"
"$BUILD/benchmarks/checkpoint_bench" "$DIR/ckpt" "$N" 3

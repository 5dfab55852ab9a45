#!/usr/bin/env bash
# Sets up a fresh machine, builds Ternion, and runs the main job on the CPU backend:
# prepares the fortunes corpus, trains configs/gpt-tiny-cpu.yaml, and prints a sample.
# Extra arguments go to `ternion train` (e.g. --set train.steps=100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
TERNION=./build/src/cli/ternion
"$TERNION" --version
bash scripts/prepare_fortunes.sh "$TERNION" data
"$TERNION" train --config configs/gpt-tiny-cpu.yaml "$@"
echo "== sample"
"$TERNION" sample --checkpoint runs/gpt-tiny-cpu/model.h5 --prompt "The " --tokens 300 --top-k 20 --seed 7

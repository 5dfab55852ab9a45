#!/usr/bin/env bash
# Sets up a fresh machine, builds Ternion, and runs the main job on the CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/src/cli/ternion --version
./build/src/cli/ternion selftest

#!/usr/bin/env bash
# Sets up a fresh machine, builds with warnings as errors, and runs the whole test suite.
# Then builds the CPU-only configuration and runs its tests too, unless TERNION_QUICK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
JOBS=$(nproc)

echo "== default configuration (TERNION_CUDA=AUTO), warnings as errors"
TERNION_BUILD_DIR=build bash scripts/build.sh -DTERNION_WERROR=ON -DTERNION_CUDA=AUTO
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 600

if [ "${TERNION_QUICK:-0}" != 1 ]; then
  echo "== CPU-only configuration (TERNION_CUDA=OFF) with AddressSanitizer and UBSan"
  TERNION_BUILD_DIR=build-asan CMAKE_BUILD_TYPE=Debug bash scripts/build.sh \
    -DTERNION_WERROR=ON -DTERNION_CUDA=OFF -DTERNION_SANITIZE=ON -DTERNION_BUILD_BENCHMARKS=OFF
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" --timeout 900 -LE e2e
fi

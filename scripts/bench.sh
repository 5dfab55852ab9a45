#!/usr/bin/env bash
# Builds the CPU benchmarks (Release, CPU only) and runs them. Writes under build/bench/:
#   cpu_peak.{txt,json}       this machine's ceilings (FMA FLOP/s, STREAM copy/triad GB/s)
#   cpu_ops_bench.{txt,json}  the kernels at GPT sizes (each validated before it is timed)
#   summary.md                median and best of the repetitions, and best / ceiling
#   machine.txt               CPU, cores, memory, OPENBLAS_* variables, load before and after
# The .txt files are the console output (aggregates only); the JSON holds every repetition.
# About 3 minutes on 2 cores. Environment:
#   BENCH_REPS (5), BENCH_MIN_TIME (0.1 s per repetition), TERNION_BENCH_BUILD_DIR (build-bench),
#   TERNION_CMAKE_ARGS (extra configure arguments, word-split).
# Extra arguments go to both programs, e.g. scripts/bench.sh --benchmark_filter=gemm
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TERNION_BENCH_BUILD_DIR:-build-bench}
OUT_DIR=build/bench
REPS=${BENCH_REPS:-5}
MIN_TIME=${BENCH_MIN_TIME:-0.1}

GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
# shellcheck disable=SC2086  # TERNION_CMAKE_ARGS is a list of arguments
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DTERNION_CUDA=OFF \
  -DTERNION_BUILD_TESTS=OFF -DTERNION_BUILD_BENCHMARKS=ON ${TERNION_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" --target cpu_peak cpu_ops_bench -j "$(nproc)"

mkdir -p "$OUT_DIR"
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | xargs)" \
    "(family $(grep -m1 'cpu family' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs)," \
    "model $(grep -m1 '^model\s' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs))"
  echo "cores: $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)"
  echo "OpenBLAS environment: $(env | grep '^OPENBLAS_' | sort | xargs)" \
    "(no OPENBLAS_CORETYPE: OpenBLAS picks its kernels from cpuid)"
  echo "load average before: $(loadavg)"
} >"$OUT_DIR/machine.txt"
for prog in cpu_peak cpu_ops_bench; do
  echo "== $prog"
  "$BUILD_DIR/benchmarks/$prog" --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPS" --benchmark_display_aggregates_only=true \
    --benchmark_out="$OUT_DIR/$prog.json" --benchmark_out_format=json "$@" 2>&1 |
    tee "$OUT_DIR/$prog.txt"
done

echo "load average after: $(loadavg)" >>"$OUT_DIR/machine.txt"

if command -v python3 >/dev/null; then
  python3 benchmarks/summarize.py "$OUT_DIR/cpu_peak.json" "$OUT_DIR/cpu_ops_bench.json" \
    >"$OUT_DIR/summary.md"
  cat "$OUT_DIR/summary.md"
fi
cat "$OUT_DIR/machine.txt"
echo "results in $OUT_DIR/"

#!/usr/bin/env bash
# CPU training throughput, Ternion against PyTorch eager, on 1 and 2 threads: builds
# benchmarks/train_bench (Release, CPU only) and runs it beside benchmarks/torch_train_bench.py
# (same model and step), interleaved (Ternion, PyTorch, Ternion, PyTorch, ...) so that load
# from other processes on a shared machine falls on both alike. Writes under build/bench-train/:
#   runs.jsonl   one RESULT line per run (tokens/s: mean, median and best of its timed steps)
#   *.txt        console output of every run
#   summary.md   per thread count: best and median over the rounds of each run's median
#                step, and the ratio Ternion / PyTorch of the bests
#   machine.txt  CPU, cores, versions, OPENBLAS_* variables, load before and after
# Environment: BENCH_ROUNDS (5), BENCH_STEPS (10 timed steps per run), BENCH_WARMUP (3),
#   BENCH_THREADS ("1 2"), TERNION_BENCH_BUILD_DIR (build-bench-train), PYTHON (a python3
#   with torch; default: the first of python3, /usr/bin/python3 that imports it).
# Extra arguments go to both programs (model sizes, e.g. --layers 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TERNION_BENCH_BUILD_DIR:-build-bench-train}
OUT_DIR=build/bench-train
ROUNDS=${BENCH_ROUNDS:-5}
STEPS=${BENCH_STEPS:-10}
WARMUP=${BENCH_WARMUP:-3}
THREADS=${BENCH_THREADS:-1 2}

if [[ -z "${PYTHON:-}" ]]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
[[ -n "${PYTHON:-}" ]] || { echo "bench_train.sh: no python3 with torch (apt install python3-torch)" >&2; exit 1; }

GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DTERNION_CUDA=OFF \
  -DTERNION_BUILD_TESTS=OFF -DTERNION_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" --target train_bench -j "$(nproc)"

mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/runs.jsonl "$OUT_DIR"/*.txt
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
{
  echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:\s*//p' | head -1)" \
    "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo "cores: $(nproc); threads per core: $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core:\s*//p')"
  echo "compiler: $(c++ --version | head -1)"
  echo "torch: $("$PYTHON" -c 'import torch; print(torch.__version__)') ($PYTHON)"
  echo "openblas: $(dpkg-query -W -f='${Package} ${Version}\n' 'libopenblas0-*' 2>/dev/null | xargs)"
  echo "OpenBLAS environment: $(env | grep '^OPENBLAS_' | sort | xargs)"
  echo "load average before: $(loadavg)"
} >"$OUT_DIR/machine.txt"

run() {  # run IMPL THREADS ROUND
  local impl=$1 n=$2 round=$3 log="$OUT_DIR/$1-t$2-r$3.txt"
  local args=(--threads "$n" --steps "$STEPS" --warmup "$WARMUP" "${@:4}")
  if [[ $impl == ternion ]]; then
    OMP_NUM_THREADS=$n OPENBLAS_NUM_THREADS=$n "$BUILD_DIR/benchmarks/train_bench" "${args[@]}" >"$log"
  else
    OMP_NUM_THREADS=$n OPENBLAS_NUM_THREADS=$n "$PYTHON" benchmarks/torch_train_bench.py "${args[@]}" >"$log"
  fi
  sed -n 's/^RESULT //p' "$log" | tee -a "$OUT_DIR/runs.jsonl"
}
for round in $(seq 1 "$ROUNDS"); do
  for n in $THREADS; do
    run ternion "$n" "$round" "$@"
    run pytorch "$n" "$round" "$@"
  done
done
echo "load average after: $(loadavg)" >>"$OUT_DIR/machine.txt"

"$PYTHON" - "$OUT_DIR/runs.jsonl" >"$OUT_DIR/summary.md" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
print("| threads | Ternion tokens/s (best) | PyTorch tokens/s (best) | Ternion / PyTorch | "
      "Ternion (median of runs) | PyTorch (median of runs) |")
print("|---:|---:|---:|---:|---:|---:|")
for n in sorted({r["threads"] for r in runs}):
    med = {impl: [r["tokens_per_sec_median"] for r in runs if r["threads"] == n and r["impl"] == impl]
           for impl in ("ternion", "pytorch")}
    t, p = max(med["ternion"]), max(med["pytorch"])
    print(f"| {n} | {t:.0f} | {p:.0f} | {t / p:.2f} | {statistics.median(med['ternion']):.0f} | "
          f"{statistics.median(med['pytorch']):.0f} |")
print(f"\nEach run's figure is the median of its timed steps; best and median are over "
      f"{len(runs) // 2 // len({r['threads'] for r in runs})} interleaved rounds.")
EOF
cat "$OUT_DIR/summary.md"
cat "$OUT_DIR/machine.txt"
echo "results in $OUT_DIR/"

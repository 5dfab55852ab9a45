#!/usr/bin/env bash
# All-reduce through Ternion's communicator beside raw MPI_Allreduce, same buffers, same run,
# at each rank count given (default 2 and 4; above the core count it is oversubscribed).
# Usage: scripts/bench_comm.sh [NP...]   (TERNION_BUILD_DIR, default build; REPS, default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TERNION_BUILD_DIR:-build}
cmake --build "$BUILD" --target comm_bench >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "== $(getconf _NPROCESSORS_ONLN) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for np in "${@:-2 4}"; do
  for n in $np; do
    echo "== mpirun -np $n"
    mpirun --oversubscribe -np "$n" "$BUILD/benchmarks/comm_bench" "${REPS:-5}"
  done
done

#!/usr/bin/env bash
# Launches `ternion train` under Open MPI's mpirun: one node or many, one rank per GPU
# (or N ranks on CPU), each rank bound to its share of the cores, with the NCCL_* and
# UCX_* environment forwarded to every rank. Prints the command before running it.
#
# Usage: launch/mpirun.sh [options] -- TRAIN_ARGS...
#   -n, --np N          ranks in all (default: GPUS_PER_NODE * nodes in the hostfile,
#                       or the number of GPUs here, or 1 on a machine without GPUs)
#   --per-node N        ranks per node (default: GPUs per node; with a hostfile, its slots)
#   --hostfile FILE     many nodes: lines "host slots=N" (one slot per GPU)
#   --bind-to WHAT      core | socket | numa | none (default core; see below)
#   --map-by WHAT       Open MPI mapping (default ppr:N:node:PE=K with core binding, else ppr:N:node)
#   --ternion PATH      the binary (default: ternion on PATH, else build/src/cli/ternion)
#   --dry-run           print the command and exit
#   -h, --help
# Environment: NP, PER_NODE, HOSTFILE, BIND_TO, MAP_BY, TERNION act as the options;
# MPIRUN_EXTRA is appended to mpirun's own arguments (e.g. "--mca btl_tcp_if_include eth0").
#
# Binding. Without binding the kernel migrates ranks between cores and sockets, and a rank
# may run far from its GPU and its NIC. The default maps ranks evenly over each node's
# cores: `--map-by ppr:N:node:PE=K` puts N ranks on every node, each owning K consecutive
# cores (cores / N), and `--bind-to core` confines each rank, OpenMP threads included, to
# its K cores (OMP_NUM_THREADS is set to K). Local rank i thus sits on the i-th slice of
# the node, which on the usual 8-GPU node (GPUs 0-3 on socket 0, 4-7 on socket 1) is the
# socket of GPU i. `--bind-to socket` or `numa` (mapped ppr:N:node, as Open MPI forbids
# PE=K with them) lets a rank's threads use a whole socket or NUMA domain: for nodes whose
# GPU-to-socket order is different, with --map-by of your own. `--bind-to none` is for
# machines where another job shares the cores.
#
# Examples:
#   launch/mpirun.sh -n 4 -- --config configs/gpt-tiny-cpu.yaml            # 4 CPU ranks
#   launch/mpirun.sh -- --config configs/gpt2-124m-8gpu.yaml               # all GPUs here
#   launch/mpirun.sh --hostfile hosts -- --config configs/gpt2-124m-8gpu.yaml
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

NP=${NP:-}
PER_NODE=${PER_NODE:-}
HOSTFILE=${HOSTFILE:-}
BIND_TO=${BIND_TO:-}
MAP_BY=${MAP_BY:-}
TERNION=${TERNION:-}
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np) NP=$2; shift 2 ;;
    --per-node) PER_NODE=$2; shift 2 ;;
    --hostfile) HOSTFILE=$2; shift 2 ;;
    --bind-to) BIND_TO=$2; shift 2 ;;
    --map-by) MAP_BY=$2; shift 2 ;;
    --ternion) TERNION=$2; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "mpirun.sh: unknown option '$1' (train arguments go after --)" >&2; usage >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "mpirun.sh: no train arguments (e.g. -- --config FILE)" >&2; usage >&2; exit 2; }

if [ -z "$TERNION" ]; then
  if command -v ternion >/dev/null; then TERNION=$(command -v ternion)
  else TERNION=$(cd "$(dirname "$0")/.." && pwd)/build/src/cli/ternion; fi
fi

gpus=0
if command -v nvidia-smi >/dev/null; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
nodes=1
if [ -n "$HOSTFILE" ]; then
  [ -r "$HOSTFILE" ] || { echo "mpirun.sh: cannot read hostfile '$HOSTFILE'" >&2; exit 2; }
  nodes=$(grep -cv '^\s*\(#\|$\)' "$HOSTFILE")
  slots=$(sed -n 's/.*slots=\([0-9]*\).*/\1/p' "$HOSTFILE" | head -1)
  [ -n "$PER_NODE" ] || PER_NODE=${slots:-}
fi
if [ -z "$PER_NODE" ]; then
  if [ "$gpus" -gt 0 ]; then PER_NODE=$gpus
  elif [ -n "$NP" ]; then PER_NODE=$(( (NP + nodes - 1) / nodes ))
  else PER_NODE=1; fi
fi
[ -n "$NP" ] || NP=$((PER_NODE * nodes))

cores=$(nproc)
pe=$(( cores / PER_NODE ))
ARGS=(-np "$NP")
[ -z "$HOSTFILE" ] || ARGS+=(--hostfile "$HOSTFILE")
if [ "$pe" -ge 1 ]; then
  [ -n "$BIND_TO" ] || BIND_TO=core
  if [ -z "$MAP_BY" ]; then
    if [ "$BIND_TO" = core ]; then MAP_BY="ppr:$PER_NODE:node:PE=$pe"; else MAP_BY="ppr:$PER_NODE:node"; fi
  fi
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$pe}
else
  # More ranks than cores (a test on a small machine): share the cores, bind nothing.
  [ -n "$MAP_BY" ] || MAP_BY="ppr:$PER_NODE:node"
  [ -n "$BIND_TO" ] || BIND_TO=none
  ARGS+=(--oversubscribe)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
ARGS+=(--map-by "$MAP_BY" --bind-to "$BIND_TO" --report-bindings)
# Every rank sees the same environment: forward what the communication libraries read.
# (The per-node core count comes from this machine: launch from a node like the others.)
for v in OMP_NUM_THREADS PATH LD_LIBRARY_PATH \
         $(env | sed -n 's/^\(\(NCCL\|UCX\|TERNION\|CUDA\)_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
  [ -n "${!v:-}" ] || continue
  ARGS+=(-x "$v")
done
[ "$(id -u)" -ne 0 ] || ARGS+=(--allow-run-as-root)
# shellcheck disable=SC2206
[ -z "${MPIRUN_EXTRA:-}" ] || ARGS+=(${MPIRUN_EXTRA})

CMD=(mpirun "${ARGS[@]}" "$TERNION" train "$@")
printf 'mpirun.sh:'; printf ' %q' "${CMD[@]}"; printf '\n'
[ "$DRY_RUN" = 1 ] && exit 0
exec "${CMD[@]}"

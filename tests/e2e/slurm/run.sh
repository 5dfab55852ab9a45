#!/usr/bin/env bash
# Slurm end to end, on a one-node cluster that this script starts on localhost (munged,
# slurmctld and slurmd as root, state under WORKDIR, stopped on exit):
#  1. launch/slurm.sbatch trains the tiny config on NTASKS ranks (srun --mpi=pmix) to the
#     end: the job completes, every step's loss is logged and a checkpoint is committed.
#  2. The same job again, sent USR1 mid-run (`scancel --signal=USR1 --batch`, what Slurm
#     does before the time limit): every rank checkpoints at the next step boundary, the
#     batch script requeues the job, and the requeued run resumes from the checkpoint and
#     finishes with the same per-step losses as the uninterrupted job.
# Exits 77 (skipped) only when Slurm and munge are not installed and cannot be.
# Usage: run.sh TERNION WORKDIR [NTASKS]
set -euo pipefail
TERNION=$(realpath "$1")
WORK=$2
NTASKS=${3:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)

have_slurm() { command -v munged && command -v slurmctld && command -v slurmd && command -v sbatch; } >/dev/null
if ! have_slurm && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "slurm e2e: installing slurm-wlm and munge (scripts/setup.sh installs them too)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    slurm-wlm slurm-wlm-basic-plugins munge >/dev/null 2>&1 || true
fi
if ! have_slurm; then
  echo "slurm e2e: SKIPPED: Slurm (slurm-wlm) and munge are not installed and could not be"
  exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "slurm e2e: must run as root (slurmd starts jobs as any user)" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"/{munge,state,spool,run,log,jobs}
WORK=$(realpath "$WORK")
export SLURM_CONF=$WORK/slurm.conf

stop_cluster() {
  scancel --quiet --full --signal=KILL --user=root 2>/dev/null || true
  for p in slurmd-e2e0 slurmctld munged; do
    [ -f "$WORK/run/$p.pid" ] && kill "$(cat "$WORK/run/$p.pid")" 2>/dev/null || true
  done
  sleep 1
  for p in slurmd-e2e0 slurmctld munged; do
    [ -f "$WORK/run/$p.pid" ] && kill -9 "$(cat "$WORK/run/$p.pid")" 2>/dev/null || true
  done
}
fail() {
  echo "FAIL: $*"
  for f in "$WORK"/jobs/*.out "$WORK"/log/slurmctld.log "$WORK"/log/slurmd.log; do
    [ -f "$f" ] && { echo "---- $f (tail)"; tail -n 30 "$f"; }
  done
  exit 1
}
trap stop_cluster EXIT

# Ports of our own, so that two runs of the suite on one machine do not meet.
read -r CTLD_PORT SLURMD_PORT < <(python3 -c "
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(('127.0.0.1', 0))
print(*[s.getsockname()[1] for s in ss])")
HOST=$(hostname -s)
sed -e "s|@DIR@|$WORK|g" -e "s|@HOST@|$HOST|g" -e "s|@NODE@|e2e0|g" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
    "$HERE/slurm.conf.in" > "$SLURM_CONF"

dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$WORK/munge"
chmod 400 "$WORK/munge/munge.key"
munged --force --socket="$WORK/munge/munge.socket" --key-file="$WORK/munge/munge.key" \
  --log-file="$WORK/log/munged.log" --pid-file="$WORK/run/munged.pid" --seed-file="$WORK/munge/seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N e2e0
for _ in $(seq 1 60); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.5
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || fail "the node did not come up idle: $(sinfo 2>&1)"
echo "slurm e2e: cluster up (ctld port $CTLD_PORT, node e2e0 with 4 CPUs), $(srun --version)"

source "$ROOT/tests/e2e/lib.sh"
e2e_prepare_corpus 5000

STEPS=200
submit() {  # submit RUN_NAME: prints the job id
  CONFIG="$ROOT/configs/gpt-tiny-cpu.yaml" TERNION="$TERNION" OMP_NUM_THREADS=1 \
    sbatch --parsable -N 1 -n "$NTASKS" --ntasks-per-node="$NTASKS" --cpus-per-task=1 \
      --gpus-per-node=0 --time=10 --output="$WORK/jobs/$1-%j.out" "$ROOT/launch/slurm.sbatch" \
      --set run.dir="$WORK/$1" --set data.train="$WORK/corpus.h5" --set data.val= \
      --set model.n_layer=1 --set model.n_embd=32 --set model.n_head=2 --set model.block_size=32 \
      --set train.global_batch_size=8 --set train.micro_batch_size=2 --set train.steps=$STEPS \
      --set log.interval=1 --set checkpoint.interval=100
}
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_done() {  # wait_done JOB SECONDS: until the job has ended for good
  for _ in $(seq 1 $(($2 * 2))); do
    case "$(job_field "$1" JobState)" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|"") return 0 ;;
    esac
    sleep 0.5
  done
  fail "job $1 still $(job_field "$1" JobState) after $2 s"
}

# 1. Uninterrupted.
A=$(submit full)
wait_done "$A" 120
[ "$(job_field "$A" JobState)" = COMPLETED ] || fail "job $A ended $(job_field "$A" JobState)"
grep -q "layout dp=$NTASKS " "$WORK"/jobs/full-"$A".out || fail "job $A did not train data-parallel on $NTASKS ranks"
grep -q "ternion train: done" "$WORK"/jobs/full-"$A".out || fail "job $A did not finish training"
[ "$(wc -l < "$WORK/full/metrics.jsonl")" -eq $STEPS ] || fail "job $A logged $(wc -l < "$WORK/full/metrics.jsonl") steps, not $STEPS"
"$TERNION" checkpoint inspect "$WORK/full" > "$WORK/inspect_full.txt" || fail "job $A's checkpoint does not verify"
echo "slurm e2e: job $A trained $STEPS steps on $NTASKS ranks; $(head -1 "$WORK/inspect_full.txt")"

# 2. Preempted mid-run, requeued, resumed.
B=$(submit preempt)
# Mid-run: once 40 of the 200 steps are logged (the handlers are in place by then).
logged() { [ -s "$WORK/preempt/metrics.jsonl" ] && wc -l < "$WORK/preempt/metrics.jsonl" || echo 0; }
for _ in $(seq 1 1200); do
  [ "$(logged)" -ge 40 ] && break
  [ "$(job_field "$B" JobState)" = PENDING ] || [ "$(job_field "$B" JobState)" = RUNNING ] || fail "job $B ended early"
  sleep 0.1
done
[ "$(logged)" -ge 40 ] || fail "job $B logged $(logged) steps in 120 s"
scancel --signal=USR1 --batch "$B"
wait_done "$B" 180
OUT="$WORK/jobs/preempt-$B.out"
[ "$(job_field "$B" JobState)" = COMPLETED ] || fail "job $B ended $(job_field "$B" JobState)"
[ "$(job_field "$B" Restarts)" = 1 ] || fail "job $B restarted $(job_field "$B" Restarts) times, not once"
grep -q "ternion train: preempted at step" "$OUT" || fail "job $B was not preempted"
grep -q "slurm.sbatch: checkpoint committed; requeueing" "$OUT" || fail "job $B was not requeued"
grep -q "ternion train: resumed from" "$OUT" || fail "the requeued job $B did not resume"
grep -q "ternion train: done" "$OUT" || fail "the requeued job $B did not finish"
grep -E "preempted at step|requeueing|resumed from" "$OUT" | sed 's/^/  /'

python3 - "$WORK/full/metrics.jsonl" "$WORK/preempt/metrics.jsonl" "$STEPS" <<'PY'
import json, sys
def losses(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["step"]] = r["loss"]  # a step logged twice (before and after resume): the later
    return out
full, pre, steps = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
assert sorted(full) == list(range(steps)), "the uninterrupted run did not log every step"
assert sorted(pre) == list(range(steps)), "the preempted run did not log every step"
diff = [s for s in range(steps) if pre[s] != full[s]]
assert not diff, f"losses differ from the uninterrupted run at {len(diff)} steps, first {diff[0]}: " \
                 f"{pre[diff[0]]} vs {full[diff[0]]}"
print(f"slurm e2e: all {steps} per-step losses equal the uninterrupted run's (final {pre[steps-1]})")
PY
echo "slurm e2e: ok"

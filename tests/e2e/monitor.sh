#!/usr/bin/env bash
# The /metrics endpoint during a run: scrapes it with curl while a short training run is in
# flight, checks that every line parses as Prometheus text (HELP and TYPE before each
# sample), that the training gauges are there with sane values, and that the step advances
# between two scrapes.
# Usage: monitor.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
e2e_fresh_workdir
command -v curl >/dev/null || { echo "monitor: curl not found; run scripts/setup.sh" >&2; exit 1; }
e2e_prepare_corpus 5000
PORT=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")

"$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" \
  --set data.train="$WORK/corpus.h5" --set data.val="$WORK/corpus_val.h5" \
  --set model.n_layer=2 --set model.n_embd=64 --set model.n_head=4 --set model.block_size=32 \
  --set train.global_batch_size=4 --set train.micro_batch_size=4 --set train.steps=100000 \
  --set train.eval_interval=20 --set train.eval_batches=1 --set log.interval=1000 \
  --set checkpoint.interval=50 --set monitor.port="$PORT" > "$WORK/train.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics"; }
step_of() { sed -n 's/^ternion_step \([0-9]*\)$/\1/p'; }
# Wait (up to 60 s) for the server and a first completed step past an evaluation and a save.
first=0
for _ in $(seq 1 600); do
  if body=$(scrape 2>/dev/null) && [ "$(echo "$body" | step_of)" -gt 60 ]; then first=1; break; fi
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: training ended early:"; cat "$WORK/train.log"; exit 1; }
  sleep 0.1
done
[ "$first" = 1 ] || { echo "FAIL: no step past 60 on /metrics within 60 s:"; cat "$WORK/train.log"; exit 1; }
echo "$body" > "$WORK/scrape1.txt"
sleep 1
scrape > "$WORK/scrape2.txt"
grep -q "metrics at http://0.0.0.0:$PORT/metrics" "$WORK/train.log" || { echo "FAIL: no address in the log"; exit 1; }
kill -USR1 "$pid"
wait "$pid"
trap - EXIT

python3 - "$WORK/scrape1.txt" "$WORK/scrape2.txt" <<'PY'
import math, re, sys
def parse(path):
    samples, help_, type_ = {}, None, None
    for line in open(path).read().splitlines():
        if line.startswith("# HELP "):
            help_ = line.split()[2]
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind == "gauge", line
            type_ = name
        else:
            m = re.fullmatch(r"([a-z_]+) (\S+)", line)
            assert m, f"not a sample line: {line!r}"
            name = m.group(1)
            assert help_ == name and type_ == name, f"{name} lacks HELP/TYPE lines"
            samples[name] = float(m.group(2))
    return samples
a, b = parse(sys.argv[1]), parse(sys.argv[2])
for k in ("step", "loss", "val_loss", "tokens_per_second", "mfu", "learning_rate", "grad_norm",
          "memory_bytes", "checkpoint_block_ms", "checkpoint_total_ms"):
    assert "ternion_" + k in a, f"ternion_{k} missing from /metrics"
assert 0 < a["ternion_loss"] < 10 and math.isfinite(a["ternion_loss"]), a
assert 0 < a["ternion_val_loss"] < 10, a
assert a["ternion_tokens_per_second"] > 0 and a["ternion_memory_bytes"] > 0, a
assert 0 < a["ternion_learning_rate"] <= 3e-3 and a["ternion_grad_norm"] > 0, a
assert b["ternion_step"] > a["ternion_step"], f"step did not advance: {a['ternion_step']} -> {b['ternion_step']}"
print(f"/metrics: step {a['ternion_step']:.0f} -> {b['ternion_step']:.0f}, loss {a['ternion_loss']:.3f}, "
      f"val {a['ternion_val_loss']:.3f}, {a['ternion_tokens_per_second']:.0f} tok/s")
PY
echo "monitor: ok"

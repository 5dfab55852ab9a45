#!/usr/bin/env bash
# End-to-end: prepare the fortunes corpus, train a small GPT on it for a short while, and
# check that the validation loss falls well below the corpus's unigram entropy (what a
# model that ignores context can reach), then that `ternion sample` generates text.
# Usage: train_fortunes.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$WORK/run"
mkdir -p "$WORK"
bash "$ROOT/scripts/prepare_fortunes.sh" "$TERNION" "$WORK/data"

# Unigram entropy of the training bytes, in nats.
H=$(python3 - "$WORK/data/fortunes.txt" <<'PY'
import collections, math, sys
data = open(sys.argv[1], "rb").read()
n = len(data)
print(-sum(c / n * math.log(c / n) for c in collections.Counter(data).values()))
PY
)

"$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" \
  --set run.dir="$WORK/run" --set data.train="$WORK/data/fortunes.h5" \
  --set data.val="$WORK/data/fortunes_val.h5" \
  --set model.n_layer=2 --set model.n_embd=64 --set model.n_head=4 --set model.block_size=64 \
  --set train.steps=300 --set train.eval_interval=100 --set train.eval_batches=16 \
  --set optim.warmup_steps=20 --set log.interval=50

python3 - "$WORK/run/metrics.jsonl" "$H" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
H = float(sys.argv[2])
val = [r["val_loss"] for r in rows if "val_loss" in r]
first, last = rows[0]["loss"], val[-1]
print(f"unigram entropy {H:.3f} nats; first loss {first:.3f}; final val loss {last:.3f}")
for k in ("step", "loss", "lr", "grad_norm", "tokens_per_sec"):
    assert all(k in r for r in rows), f"metrics.jsonl lacks '{k}'"
assert rows[-1]["step"] == 299, rows[-1]
assert first > 5.0, f"initial loss {first} should be near ln(256) = 5.55"
assert last < H - 0.4, f"final val loss {last:.3f} is not well below the unigram entropy {H:.3f}"
PY

"$TERNION" sample --checkpoint "$WORK/run/model.h5" --prompt "The " --tokens 64 --top-k 10 --seed 1 \
  > "$WORK/sample.txt"
head -c 200 "$WORK/sample.txt"; echo
[ "$(wc -c < "$WORK/sample.txt")" -ge 64 ] || { echo "sample too short" >&2; exit 1; }
echo "e2e: ok"

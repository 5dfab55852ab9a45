#!/usr/bin/env bash
# `ternion plot`: a short run's metrics.jsonl becomes three PNGs (loss with validation,
# throughput, learning rate) that are real images of the expected size with more than a
# blank canvas in them; a directory without metrics is a clear error.
# Usage: plot.sh TERNION WORKDIR
set -euo pipefail
TERNION=$1
WORK=$2
source "$(dirname "$0")/lib.sh"
e2e_fresh_workdir
command -v gnuplot >/dev/null || { echo "plot: gnuplot not found; run scripts/setup.sh" >&2; exit 1; }
e2e_prepare_corpus 3000
"$TERNION" train --config "$ROOT/configs/gpt-tiny-cpu.yaml" --set run.dir="$WORK/run" \
  --set data.train="$WORK/corpus.h5" --set data.val="$WORK/corpus_val.h5" \
  --set model.n_layer=1 --set model.n_embd=32 --set model.n_head=2 --set model.block_size=32 \
  --set train.global_batch_size=4 --set train.micro_batch_size=4 --set train.steps=60 \
  --set train.eval_interval=20 --set train.eval_batches=1 --set log.interval=5 > "$WORK/train.log"

"$TERNION" plot "$WORK/run" --output "$WORK/plots" | tee "$WORK/plot.log"
python3 - "$WORK/plots" <<'PY'
import struct, sys, zlib
for name in ("loss.png", "throughput.png", "lr.png"):
    data = open(f"{sys.argv[1]}/{name}", "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (800, 480), f"{name} is {w}x{h}"
    # A blank canvas compresses to almost nothing: the plot's lines and labels do not.
    assert len(data) > 8000, f"{name} is only {len(data)} bytes"
    print(f"{name}: {w}x{h}, {len(data)} bytes")
PY
grep -q "validation" "$WORK/plots/plots.gp" || { echo "FAIL: the loss plot has no validation curve"; exit 1; }

mkdir -p "$WORK/empty"
if "$TERNION" plot "$WORK/empty" > "$WORK/empty.log" 2>&1; then
  echo "FAIL: plot of a directory without metrics succeeded"; exit 1
fi
grep -q "no metrics in" "$WORK/empty.log" || { echo "FAIL: unclear error:"; cat "$WORK/empty.log"; exit 1; }
echo "plot: ok"

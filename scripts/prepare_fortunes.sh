#!/usr/bin/env bash
# Builds the default training corpus from Debian's fortunes package (installed by setup.sh):
# every fortune file, concatenated in a fixed order, tokenized to data/fortunes{,_val}.h5.
# Usage: scripts/prepare_fortunes.sh [TERNION_BINARY] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
TERNION=${1:-./build/src/cli/ternion}
OUT=${2:-data}
SRC=/usr/share/games/fortunes
if [ -s "$OUT/fortunes.h5" ] && [ -s "$OUT/fortunes_val.h5" ]; then
  echo "prepare: $OUT/fortunes.h5 is already there"
  exit 0
fi
[ -d "$SRC" ] || { echo "prepare: $SRC not found; run scripts/setup.sh (package 'fortunes')" >&2; exit 1; }
mkdir -p "$OUT"
# The text files are the ones without an extension (.dat is the index, .u8 a link).
find "$SRC" -maxdepth 1 -type f ! -name '*.*' -print0 | LC_ALL=C sort -z | xargs -0 cat > "$OUT/fortunes.txt"
"$TERNION" prepare --input "$OUT/fortunes.txt" --output "$OUT/fortunes.h5" \
  --val-output "$OUT/fortunes_val.h5" --val-fraction 0.05

# Shared by the end-to-end scripts; source it after setting TERNION and WORK.
#   ROOT                   the repository root
#   e2e_fresh_workdir      empties $WORK
#   e2e_prepare_corpus N   writes a pangram corpus repeated N times (default 5000) and
#                          prepares it: $WORK/corpus.h5 and $WORK/corpus_val.h5 (5%)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

e2e_fresh_workdir() {
  rm -rf "$WORK"
  mkdir -p "$WORK"
}

e2e_prepare_corpus() {
  python3 -c "import sys; sys.stdout.write('the quick brown fox jumps over the lazy dog. ' * ${1:-5000})" \
    > "$WORK/corpus.txt"
  "$TERNION" prepare --input "$WORK/corpus.txt" --output "$WORK/corpus.h5" --val-fraction 0.05 >/dev/null 2>&1
}

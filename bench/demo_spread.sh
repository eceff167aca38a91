#!/usr/bin/env bash
# The Gray-Scott demo run by an older checkout and by this tree, one after the other, to compare
# their metrics with bench/demo_spread.py (the demo is not deterministic from run to run).
#   bench/demo_spread.sh OLD_CHECKOUT OUT_DIR [RUNS_OF_OLD]
set -u
OLD=$1; OUT=$2; N=${3:-2}
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY="$HERE/.venv/bin/python"
for i in $(seq 1 "$N"); do
  (cd "$OLD" && PYTHONPATH="$OLD" "$PY" -m workflows.fields pipelines/gray_scott.toml \
     --run-dir "$OUT/old$i" --no-progress > "$OUT/old$i.log" 2>&1)
done
(cd "$HERE" && PYTHONPATH="$HERE" "$PY" -m workflows.fields pipelines/gray_scott.toml \
   --run-dir "$OUT/new1" --no-progress > "$OUT/new1.log" 2>&1)

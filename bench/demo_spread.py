"""Metrics of the evaluate stage of each run under a folder (old1, old2, ..., new1): one row per
metric, and whether the new run lies within the old runs' range.

    python bench/demo_spread.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path) -> int:
    """Print the comparison table."""
    runs = {d.name: json.loads(next(d.glob("stages/evaluate-*/metrics.json")).read_text())
            for d in sorted(out.iterdir()) if d.is_dir() and any(d.glob("stages/evaluate-*"))}
    old = [n for n in runs if n.startswith("old")]
    keys = [k for k, v in runs[old[0]].items() if isinstance(v, float)]
    print(f"{'metric':32s} " + " ".join(f"{n:>8s}" for n in [*old, "new1"]) + "  within")
    inside = 0
    for key in keys:
        values = [runs[n][key] for n in old]
        new = runs["new1"][key]
        within = min(values) <= new <= max(values)
        inside += within
        print(f"{key:32s} " + " ".join(f"{v:8.4f}" for v in [*values, new])
              + f"  {'yes' if within else 'no'}")
    print(f"{inside} of {len(keys)} within the range of {len(old)} old runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

"""Copy the finished runs of a benchmark stage into the archive a later sweep reads back.

    python bench/pmo_archive.py RUN/state/benchmark-ID/runs [bench/pmo]

Only result.json files are copied (METHOD/TASK/seedN/result.json, a few kB each, with the
protocol digest the harness checks); call logs and optimiser states stay in the run directory.
Commit the archive so the sweep goes on from there on another machine or session.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Copy every finished result.json under the runs folder into the archive."""
    if len(sys.argv) < 2 or not Path(sys.argv[1]).is_dir():
        print("usage: python bench/pmo_archive.py RUN/state/benchmark-ID/runs [ARCHIVE]")
        return 2
    runs = Path(sys.argv[1])
    archive = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "bench" / "pmo"
    copied = 0
    for result in sorted(runs.glob("*/*/seed*/result.json")):
        target = archive / result.relative_to(runs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result, target)
        copied += 1
    print(f"{copied} finished runs copied to {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check the cluster recipes offline, before `kubectl apply`, `ray up` or `docker build`.

    python cluster/check.py                       # every recipe under cluster/
    python cluster/check.py my-raycluster.yaml    # your edited copy
    python cluster/check.py --deploy cluster/     # also refuse YOUR_... placeholders left in

Prints one line per problem (`FILE: FIELD: MESSAGE`) and exits 1 when there is any, else says
how many files it checked and exits 0. Run it with the project's environment (it uses Ray's
own readers of these files): `.venv/bin/python cluster/check.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    import ray  # noqa: F401 - its readers of these files are what the checks run
    import yaml  # noqa: F401
except ImportError as exc:
    sys.exit(f"cluster/check.py: {exc}: run it with the project's environment "
             "(.venv/bin/python cluster/check.py)")

from recipecheck import CLUSTER, check_paths, recipe_files  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Check the named files (default: all of cluster/) and print one line per problem."""
    parser = argparse.ArgumentParser(prog="cluster/check.py", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="recipe files or folders")
    parser.add_argument("--deploy", action="store_true",
                        help="also refuse YOUR_... placeholders (for a copy about to be applied)")
    args = parser.parse_args(argv)
    paths = args.paths or [CLUSTER]
    missing = [p for p in paths if not p.exists()]
    for path in missing:
        print(f"{path}: (file): no such file or folder")
    problems = check_paths([p for p in paths if p.exists()], deploy=args.deploy)
    for problem in problems:
        print(problem)
    if problems or missing:
        return 1
    count = sum(len(recipe_files(p)) if p.is_dir() else 1 for p in paths)
    print(f"{count} files checked: no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())

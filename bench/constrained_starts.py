"""The constrained-optimisation starts: the 800 molecules of lowest penalized logP (z-scored,
`plogp`) in the bundled ZINC validation set, written to bench/constrained/starts.smi.

    .venv/bin/python bench/constrained_starts.py
"""

from pathlib import Path

import numpy as np

from latentsci.latent.search.objective import get_objective
from latentsci.molecules.domain import read_molecules

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Score the validation set once and keep the 800 lowest, lowest first."""
    objective = get_objective("plogp")
    keys = [objective.canonical(s) for s in read_molecules(ROOT / "data/molecules/zinc_valid_24k.smi")]
    distinct = [k for k in dict.fromkeys(keys) if k is not None]
    scores = np.asarray(objective.score(distinct), dtype=float)
    lowest = np.argsort(scores, kind="stable")[:800]
    out = ROOT / "bench/constrained/starts.smi"
    out.write_text("".join(f"{distinct[i]}\n" for i in lowest))
    print(f"wrote {out}: plogp from {scores[lowest[0]]:.2f} to {scores[lowest[-1]]:.2f}")


if __name__ == "__main__":
    main()

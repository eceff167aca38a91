"""The latent-operations table of the field pipelines, read from their run directories.

    python bench/field_ops_table.py runs/gs_ops runs/ns_ops

Each run directory may hold several profiles of one pipeline (beta 0, `vae`, `vae_strong`), each
with its own stage ids; the manifest keeps only the latest record per stage name, so stage
folders are listed in the order they were written (a profile's autoencoder, then its stages) and
OOD folders name the autoencoder their detector belongs to. Prints OOD AUROC per detector and set
(latent summaries in `ood`, raw latents and reconstruction error in `ood_raw`), the structure
metrics (clusters, MIG, DCI) and the probe tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def _stage_dirs(run: Path, kind: str) -> list[Path]:
    """Every output folder of a stage name in the run (one per profile that ran it), oldest
    first."""
    return sorted((run / "stages").glob(f"{kind}-*"), key=lambda f: f.stat().st_mtime)


def _codec_of(folder: Path) -> str:
    """The autoencoder id a stage folder's detector or outputs came from (via its manifest)."""
    meta = folder / "detector" / "detector.json"
    if meta.is_file():
        return Path(json.loads(meta.read_text())["codec"]["source"]).parent.name
    return ""


def _ood(folder: Path) -> dict[str, float]:
    """AUROC of each detector per set, and the combined one."""
    table = pd.read_csv(folder / "ood_report.csv")
    return {f"{row.set}/{row.detector}": row.auroc for row in table.itertuples()}


def main() -> int:
    """Print the OOD tables of every autoencoder in the runs given."""
    for run in map(Path, sys.argv[1:]):
        print(f"# {run}")
        for folder in _stage_dirs(run, "autoencoder"):
            print("autoencoder", folder.name)
        for kind in ("ood", "ood_raw"):
            for folder in _stage_dirs(run, kind):
                print(kind, _codec_of(folder), json.dumps(
                    {k: round(v, 3) for k, v in _ood(folder).items()}))
        for folder in _stage_dirs(run, "structure"):
            saved = json.loads((folder / "structure.json").read_text())
            print("structure", folder.name, json.dumps({k: round(v, 3) for k, v in saved.items()}))
        for folder in _stage_dirs(run, "probe"):
            print("probe", folder.name)
            print(pd.read_csv(folder / "probe.csv").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

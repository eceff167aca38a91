"""AUROC of the OOD detectors of the shipped molecule model: held-out ZINC against shifted sets.

    python bench/ood_table.py --table RUN/stages/ingest-ID/molecules.parquet [--fit 20000]

RUN is a run of pipelines/zinc_vae_shipped.toml (its ingest stage's scaffold-split table). The
detectors are fitted on `--fit` molecules of its train split (encoded into a store by the
shipped model) and calibrated on a held-out share of them. In-distribution: other train-split
molecules the detectors never saw. Shifted: the test split (unseen scaffolds, near), QM9 (far),
and the MoleculeNet sets in data/molecules/moleculenet/. Up to `--eval` molecules per set.
Prints one row per set: the combined score's AUROC, AUPR and FPR at 95% TPR, each detector's
AUROC, and how many molecules the codec could not encode (scored as the worst).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHIFTED = {"qm9": "data/molecules/qm9.csv", "esol": "data/molecules/moleculenet/esol.csv",
           "freesolv": "data/molecules/moleculenet/freesolv.csv",
           "lipophilicity": "data/molecules/moleculenet/lipo.csv",
           "bbbp": "data/molecules/moleculenet/bbbp.csv",
           "bace": "data/molecules/moleculenet/bace.csv", "hiv": "data/molecules/moleculenet/hiv.csv"}


def _sample(items: list[str], n: int, seed: int) -> list[str]:
    """Up to n items, a seeded draw."""
    pick = np.random.default_rng(seed).permutation(len(items))[:n]
    return [items[i] for i in np.sort(pick)]


def _sets(table: pd.DataFrame, fit_n: int, eval_n: int, seed: int) -> tuple[list, dict]:
    """Molecules to fit on, and the evaluation sets (in-distribution first)."""
    from latentsci.molecules.ingest import read_smiles_file

    train = table.loc[table["split"] == "train", "smiles"].tolist()
    order = np.random.default_rng(seed).permutation(len(train))
    fit = [train[i] for i in order[:fit_n]]
    sets = {"zinc held-out (in)": [train[i] for i in order[fit_n : fit_n + eval_n]],
            "zinc test scaffolds": _sample(table.loc[table["split"] == "test", "smiles"]
                                           .tolist(), eval_n, seed)}
    for name, path in SHIFTED.items():
        sets[name] = _sample(list(read_smiles_file(ROOT / path, column="smiles").texts), eval_n,
                             seed)
    return fit, sets


def main() -> int:
    """Fit, score every set, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--fit", type=int, default=20000)
    parser.add_argument("--eval", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--knn-metric", choices=["euclidean", "cosine"], default="euclidean")
    parser.add_argument("--detectors", nargs="+", default=None, help="default: all")
    args = parser.parse_args()
    import ray

    from latentsci.latent import load_codec
    from latentsci.latent.ood import OODConfig
    from latentsci.latent.ood_fit import fit_detector, gate
    from latentsci.latent.ood_report import report_scores, separation
    from latentsci.molecules.tasks import encode_table
    from latentsci.molecules.vae.shipped import shipped_model_dir
    from latentsci.store import LatentStore

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    fit, sets = _sets(pd.read_parquet(args.table), args.fit, args.eval, args.seed)
    model = shipped_model_dir()
    codec = load_codec(model)
    with tempfile.TemporaryDirectory() as tmp:
        frame = pd.DataFrame({"id": [f"f{i}" for i in range(len(fit))], "smiles": fit,
                              "split": "train"})
        encode_table(frame, str(model), Path(tmp) / "fit.zarr", {"smiles": "str", "split": "str"},
                     {}, 4096, False)
        store = LatentStore.open(Path(tmp) / "fit.zarr")
        detector = fit_detector(store, OODConfig(
            knn_metric=args.knn_metric, **({"detectors": args.detectors} if args.detectors else {})), codec=codec)
        scores = {name: report_scores(gate(detector, store, codec, items=items))
                  for name, items in sets.items()}
    inside = scores.pop("zinc held-out (in)")
    names = list(inside)
    print(f"{'shifted set':22s} {'n':>5s} {'unenc':>5s} {'AUROC':>6s} {'AUPR':>6s} {'FPR95':>6s} "
          + " ".join(f"{n[:8]:>8s}" for n in names if n != "combined"))
    for name, outside in scores.items():
        c = separation(inside["combined"], outside["combined"])
        per = [separation(inside[n], outside[n])["auroc"] for n in names if n != "combined"]
        print(f"{name:22s} {c['outside']:5.0f} {c['unencodable_outside']:5.0f} {c['auroc']:6.3f} "
              f"{c['aupr']:6.3f} {c['fpr_at_95tpr']:6.3f} " + " ".join(f"{v:8.3f}" for v in per))
    kept = np.mean(inside["combined"] <= detector.threshold)
    print(f"in-distribution kept at the calibrated threshold: {kept:.3f} (target 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

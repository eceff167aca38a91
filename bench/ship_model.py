"""Turn a finished run of pipelines/zinc_vae_shipped.toml into data/models/NAME with its card.

Usage: python bench/ship_model.py RUN_DIR [--name zinc-vae-v2] [--extra extra.json]

Copies the trained checkpoint (model.pt + meta.json; the optimizer state stays behind), saves the
Gaussian the run's sample stage drew from (refitted here exactly as that stage fits it: the same
store, split, row count and seed) and writes card.json (machine-readable: data, config, timings,
metrics, learning curve) and MODEL_CARD.md beside them. `--extra` adds measurements made after
the run (a JSON object of name -> value, e.g. FCD against another file) to the card's metrics.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tomllib
from pathlib import Path

from latentsci.latent.gaussian import LatentGaussian
from latentsci.molecules.vae.shipped import LATENT_FILE, MODELS_DIR

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "pipelines/zinc_vae_shipped.toml"
LABELS = {k: f"{k}: Wasserstein-1 distance of the samples' {k} to the test split's"
          for k in ("logP", "SA", "QED", "weight")}
HEADLINE = ["valid", "unique@10000", "Novelty", "IntDiv", "FCD/Test", "SNN/Test", "Frag/Test",
            "Scaf/Test", "Filters", "recon_accuracy"]


def stage(manifest: dict, name: str) -> dict:
    """One finished stage's record."""
    return manifest["stages"][name]


def trained_model(manifest: dict) -> Path:
    """The train stage's model folder (its output role was `model` before it was `codec`)."""
    outputs = stage(manifest, "train")["outputs"]
    return Path(outputs.get("codec") or outputs["model"])


def build_card(run_dir: Path, extra: dict, pipeline_file: str = PIPELINE) -> dict:
    """Everything the card says, read from the run's manifest, configs and outputs."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    pipeline = tomllib.loads((ROOT / pipeline_file).read_text())["stages"]
    model_dir = trained_model(manifest)
    meta = json.loads((model_dir / "meta.json").read_text())
    metrics = json.loads(Path(stage(manifest, "evaluate")["outputs"]["metrics"]).read_text())
    ingest = stage(manifest, "ingest")["metrics"]
    curve = [{k: row[k] for k in ("epoch", "loss", "recon", "kl", "token_accuracy",
                                  "recon_accuracy", "active_units", "molecules_per_s", "lr")
              if k in row} for row in meta["history"]]
    return {
        "name": None,
        "command": f"latentsci run {pipeline_file} --run-dir RUN_DIR",
        "data": {"sources": pipeline["ingest"]["source"], "split": pipeline["ingest"]["split"],
                 "rows": {k: v for k, v in ingest.items()}},
        "model_config": meta["config"],
        "train_config": pipeline["train"],
        "sample_config": pipeline["sample"],
        "evaluate_config": pipeline["evaluate"],
        "seconds": {name: record["seconds"] for name, record in manifest["stages"].items()},
        "metrics": {**metrics, **extra},
        "learning_curve": curve,
    }


def markdown(card: dict) -> str:
    """MODEL_CARD.md: what a user reads before trusting the model."""
    m, rows, train = card["metrics"], card["data"]["rows"], card["train_config"]
    config = card["model_config"]
    minutes = {k: v / 60 for k, v in card["seconds"].items()}
    lines = [
        f"# {card['name']}: graph-encoder / SELFIES-decoder VAE on ZINC",
        "",
        "A molecule VAE trained on 2 CPU cores, shipped so that interpolation, search and "
        "campaigns work on a fresh clone without training. Load it with "
        f"`MoleculeVAE.load('data/models/{card['name']}')`, or leave `--model` out of the CLI "
        "verbs. Samples come from `latent_gaussian.npz`, a full-covariance Gaussian fitted to "
        "the posterior means of training molecules (not from N(0, I)).",
        "",
        "## Data and split",
        f"- Sources: {', '.join('`' + s.removeprefix('../') + '`' for s in card['data']['sources'])}"
        " read as one set (canonical SMILES, duplicates removed).",
        f"- {rows['kept']:,} distinct molecules of {rows['read']:,} lines, split by Bemis-Murcko "
        f"scaffold (seed {card['data']['split']['seed']}): train {rows['split_train']:,}, "
        f"valid {rows['split_valid']:,}, test {rows['split_test']:,}. No scaffold is in two "
        "splits; test molecules were never trained on.",
        "",
        "## How it was made",
        f"- Command: `{card['command']}` (then `python bench/ship_model.py RUN_DIR`).",
        f"- Training: {train['epochs']} epochs, batch {train['batch_size']} bucketed by length, "
        f"Adam lr {train['lr']} with cosine decay, beta {train['kl']['beta']} after "
        f"{train['kl']['warmup_steps']} warm-up steps, free bits {train['kl']['free_bits']}, "
        f"{train['num_workers']} Ray Train workers x {train['cpus_per_worker']} CPU.",
        f"- Wall time: train {minutes['train']:.0f} min; whole pipeline "
        f"{sum(minutes.values()):.0f} min (ingest {minutes['ingest']:.1f}, encode "
        f"{minutes['encode']:.1f}, sample {minutes['sample']:.1f}, evaluate "
        f"{minutes['evaluate']:.1f}).",
        f"- Model: latent {config['latent_dim']}, GINE encoder {config['encoder_layers']} x "
        f"{config['encoder_hidden']} (mean+max+sum pooling, mu batch-normalised to spread "
        f"{config['mu_batchnorm']}), GRU decoder {config['decoder_layers']} x "
        f"{config['decoder_hidden']} conditioned on z at every step, property head "
        f"({', '.join(config['properties'])}).",
        *[f"- Note: {n}" for n in card.get("notes", [])],
        "",
        "## Metrics (test split, never trained on)",
        f"{card['sample_config']['n']:,} samples (temperature "
        f"{card['sample_config'].get('temperature', 1.0)}) from the fitted Gaussian, MOSES "
        "metrics against the test split; reconstruction: "
        f"{card['evaluate_config']['reconstruction_molecules']:,} test molecules, greedy "
        "decoding of the posterior mean, exact canonical match.",
        "",
        "| " + " | ".join(HEADLINE) + " |",
        "|" + "---|" * len(HEADLINE),
        "| " + " | ".join(f"{m[k]:.3f}" if k in m else "-" for k in HEADLINE) + " |",
        "",
    ]
    other = {k: v for k, v in m.items() if k not in HEADLINE}
    if other:
        lines += ["Other numbers:", ""] + [f"- {LABELS.get(k, k)}: {v:.4g}"
                                           for k, v in sorted(other.items())]
        lines.append("")
    lines += ["## Learning curve", "",
              "| epoch | recon (nats) | KL (nats) | token acc. | valid. recon | mol/s |",
              "|---|---|---|---|---|---|"]
    for row in card["learning_curve"]:
        if row["epoch"] % 5 == 4 or row is card["learning_curve"][0]:
            lines.append(f"| {row['epoch'] + 1} | {row['recon']:.2f} | {row['kl']:.1f} | "
                         f"{row['token_accuracy']:.3f} | {row.get('recon_accuracy', float('nan')):.3f}"
                         f" | {row['molecules_per_s']:.0f} |")
    lines += ["", "`valid. recon` is the train stage's own check on 300 held-out molecules "
              "(z drawn from q(z|x), 3 greedy decodes each)."]
    return "\n".join(lines) + "\n"


def write_held_out(manifest: dict, card: dict, path: Path) -> None:
    """The molecules the card's reconstruction used (the evaluate stage's own draw from the test
    split), so a user can check the model on molecules it never saw."""
    import pandas as pd

    from latentsci.molecules.tasks import reconstruction_molecules

    options = card["evaluate_config"]
    table = pd.read_parquet(stage(manifest, "ingest")["outputs"]["molecules"])
    test = table.loc[table["split"].isin(options.get("test_splits", ["test"])), "smiles"].tolist()
    held_out = reconstruction_molecules(test, options["reconstruction_molecules"],
                                        options.get("seed", 0))
    path.write_text("\n".join(held_out) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", default="zinc-vae-v2")
    parser.add_argument("--extra", type=Path)
    parser.add_argument("--pipeline", default=PIPELINE, help="the pipeline file the run ran")
    parser.add_argument("--out", type=Path, help="folder to write (default data/models/NAME)")
    parser.add_argument("--note", action="append", default=[],
                        help="a line about how this run differed from the command (repeatable)")
    args = parser.parse_args()
    extra = json.loads(args.extra.read_text()) if args.extra else {}
    card = build_card(args.run_dir, extra, args.pipeline)
    card["name"] = args.name
    card["notes"] = args.note
    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    source = trained_model(manifest)
    target = args.out or MODELS_DIR / args.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.pt", "meta.json"):
        shutil.copy2(source / name, target / name)
    sample = card["sample_config"]
    gaussian = LatentGaussian.from_store(stage(manifest, "encode")["outputs"]["store"], "train",
                                         sample.get("aggregate_molecules", 20000),
                                         sample.get("seed", 0))
    gaussian.save(target / LATENT_FILE)
    write_held_out(manifest, card, target / "heldout_sample.smi")
    (target / "card.json").write_text(json.dumps(card, indent=2))
    (target / "MODEL_CARD.md").write_text(markdown(card))
    size = sum(p.stat().st_size for p in target.iterdir()) / 2**20
    print(f"wrote {target} ({size:.1f} MB)")


if __name__ == "__main__":
    main()

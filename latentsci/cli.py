"""The `latentsci` command: one short function per verb; the library does the work."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from latentsci.errors import ConfigError, LatentsciError

EPILOG = """examples:
  latentsci run pipelines/zinc_ingest.toml
  latentsci run pipelines/zinc_ingest.toml --force fingerprints
  latentsci submit pipelines/zinc_ingest.toml --address http://127.0.0.1:8265
  latentsci status
  latentsci logs raysubmit_XXXX
  latentsci query runs/zinc_ingest/stages/fingerprints-*/fingerprints.zarr --where "qed > 0.9" --limit 5
"""


def driver_command(pipeline: Path, extra: list[str]) -> list[str]:
    """The command line of a pipeline's workflow driver, identical locally and as a Ray Job."""
    from latentsci.pipeline.spec import load_pipeline

    spec = load_pipeline(pipeline)
    module = f"workflows.{spec.workflow}"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ConfigError(f"{pipeline}: pipeline.workflow: no workflow module {module!r} "
                          "(run from the project folder, or pip install the project)")
    return ["python", "-m", module, str(pipeline), *extra]


def _passthrough(args: argparse.Namespace) -> list[str]:
    """Driver flags given to `run`, forwarded unchanged."""
    extra = [f"--force={s}" for s in args.force]
    extra += ["--run-dir", str(args.run_dir)] if args.run_dir else []
    extra += ["--address", args.address] if args.address else []
    extra += ["--check"] if args.check else []
    extra += ["--profile", args.profile] if args.profile else []
    extra += ["--no-progress"] if args.no_progress else []
    return extra


def cmd_run(args: argparse.Namespace) -> int:
    """Run a pipeline's driver here (it starts or joins Ray itself)."""
    command = driver_command(args.pipeline, _passthrough(args))
    return subprocess.call([sys.executable, *command[1:]])


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate locally, then submit the same driver as a Ray Job and print its id."""
    from latentsci import jobs

    root = jobs.project_root(args.pipeline)
    pipeline = args.pipeline.resolve()
    if pipeline.is_relative_to(root):  # travels with the working dir; else must be on shared storage
        pipeline = pipeline.relative_to(root)
    profile = ["--profile", args.profile] if args.profile else []
    check = driver_command(pipeline, ["--check", *profile])
    if subprocess.call([sys.executable, *check[1:]], cwd=root, stdout=subprocess.DEVNULL) != 0:
        return 2
    run_dir = (args.run_dir or root / "runs" / pipeline.stem).resolve()
    command = driver_command(pipeline, ["--run-dir", str(run_dir), *profile])
    submission = jobs.submit(command, root, args.address)
    print(submission)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print one job's status, or all jobs'."""
    from latentsci import jobs

    for row in jobs.status(args.address, args.job_id):
        print(f"{row['submission_id']}  {row['status']:<9}  {row['entrypoint']}  {row['message']}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print a job's driver log."""
    from latentsci import jobs

    print(jobs.logs(args.address, args.job_id), end="")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Print or save the rows of a latent store that match the query."""
    from latentsci.store import LatentStore, query

    store = LatentStore.open(args.store, allow_incomplete=args.allow_incomplete)
    limit = args.limit if args.limit is not None else (None if args.out else 20)
    frame = query(store, ids=args.ids, where=args.where, knn_of=args.knn_of, k=args.k,
                  metric=args.metric, limit=limit, with_z=args.with_z)
    if args.out:
        suffix = args.out.suffix.lower()
        if suffix not in {".csv", ".parquet"}:
            raise ConfigError(f"--out {args.out}: expected a .csv or .parquet file name")
        if args.with_z and suffix == ".csv":
            frame["z"] = [" ".join(f"{v:.6g}" for v in z) for z in frame["z"]]
        frame.to_csv(args.out, index=False) if suffix == ".csv" else frame.to_parquet(args.out)
        print(f"wrote {len(frame)} rows to {args.out}")
    elif args.json:
        if args.with_z:
            frame["z"] = [z.tolist() for z in frame["z"]]
        print(json.dumps(frame.to_dict(orient="records"), default=str))
    else:
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """MOSES metrics of generated SMILES against train and test sets."""
    from latentsci.molecules.metrics import moses_metrics
    from latentsci.molecules.ingest import read_generated, read_smiles_file

    samples = read_generated(args.samples)
    train = read_smiles_file(args.train, column=args.smiles_column).texts
    test = read_smiles_file(args.test, column=args.smiles_column).texts
    metrics = moses_metrics(samples, train, test, ks=args.k, fcd=not args.no_fcd,
                            device=args.device)
    if args.json:
        print(json.dumps(metrics))
    else:
        for name, value in metrics.items():
            print(f"{name:<12} {value:.4f}")
    return 0


def _local_model(model: str | None) -> str:
    """A model folder on local disk (MLflow URIs are downloaded first), checked to be ours;
    the shipped model when none is given."""
    from latentsci.molecules.vae.checkpoint import read_meta
    from latentsci.molecules.vae.shipped import shipped_model_dir

    if model is None:
        model = str(shipped_model_dir())

    if "://" in model or model.startswith(("runs:", "models:")):
        import mlflow

        model = mlflow.artifacts.download_artifacts(model)
    read_meta(Path(model))
    return str(Path(model).resolve())


def _on_ray(address: str | None, work):
    """Run `work()` with Ray joined or started, shutting down only what this call started."""
    from latentsci.runtime import connect, disconnect

    info = connect(address)
    try:
        return work()
    finally:
        if info.owned:
            disconnect()


def cmd_encode(args: argparse.Namespace) -> int:
    """Encode a SMILES file into a new latent store with a trained molecule VAE."""
    import pandas as pd

    from latentsci.molecules.tasks import encode_table
    from latentsci.runtime import show_progress
    from latentsci.molecules.ingest import read_smiles_file

    model = _local_model(args.model)
    records = read_smiles_file(args.smiles, column=args.smiles_column)
    table = pd.DataFrame({"id": [f"line-{n}" for n in records.lines], "smiles": records.texts})
    report = _on_ray(args.address, lambda: encode_table(
        table, model, args.out, {"smiles": "str"}, {"source": str(args.smiles)}, None,
        show_progress()))
    rejects = args.out.with_name(args.out.name + ".rejects.csv")
    report.to_csv(rejects, index=False)
    print(f"encoded {len(table) - len(report)} of {len(table)} molecules into {args.out} "
          f"({len(report)} rejected, see {rejects})")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample molecules from a trained molecule VAE (prior or fitted latent Gaussian) to a file."""
    from latentsci.molecules.tasks import sample_molecules
    from latentsci.runtime import show_progress

    from latentsci.molecules.vae.aggregate import LatentGaussian
    from latentsci.molecules.vae.shipped import fitted_latent_file

    model = _local_model(args.model)
    latent, saved = None, fitted_latent_file(model)
    if args.from_store is not None:
        latent = LatentGaussian.from_store(args.from_store, "train", seed=args.seed)
    elif saved is not None and not args.prior:
        latent = LatentGaussian.load(saved)
    samples = _on_ray(args.address, lambda: sample_molecules(
        model, args.n, 500, args.seed, args.temperature, show_progress(), latent))
    args.out.write_text("\n".join(samples) + "\n")
    print(f"wrote {len(samples)} molecules to {args.out}")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Forecast fields with a trained latent surrogate from a user's initial frames."""
    from latentsci.fields.forecast.forecasts import rollout_to_zarr

    out = rollout_to_zarr(args.surrogate, args.initial, args.steps, args.out, args.members,
                          args.start, args.seed)
    print(f"wrote {args.steps} forecast steps to {out}")
    return 0


def _verb(verbs, name: str, fn, text: str, examples: list[str], parents=()) -> argparse.ArgumentParser:
    """One subcommand: a one-line help, examples in its epilog, and the function it calls."""
    epilog = "examples:\n" + "\n".join(f"  latentsci {name} {e}" for e in examples)
    p = verbs.add_parser(name, help=text, description=text, epilog=epilog, parents=list(parents),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(fn=fn)
    return p


def _query_flags(q: argparse.ArgumentParser) -> None:
    """Selection and output flags of `query`."""
    q.add_argument("store", type=Path, help="latent store (a .zarr folder)")
    q.add_argument("--ids", nargs="+", metavar="ID", help="rows with these ids")
    q.add_argument("--where", metavar="EXPR", help="property filter, e.g. \"qed > 0.8 and sa < 3\"")
    q.add_argument("--knn-of", metavar="ID", help="nearest neighbours of this id (exact)")
    q.add_argument("-k", type=int, default=10, help="neighbours to return (default 10)")
    q.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    q.add_argument("--limit", type=int, help="at most N rows (default 20 when printing)")
    q.add_argument("--with-z", action="store_true", help="include the latent vector")
    q.add_argument("--allow-incomplete", action="store_true", help="read an unfinished store")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--out", type=Path, metavar="FILE", help="write .csv or .parquet")


SHIPPED_HELP = ("model folder (default: the molecule model shipped in "
                "data/models/zinc-vae-v1, see its MODEL_CARD.md)")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: verbs, flags and examples."""
    from latentsci.pipeline.driver import run_flags

    top = argparse.ArgumentParser(prog="latentsci", epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  description="Learn, store and query scientific latent spaces "
                                              "with Ray, Zarr and MLflow.")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    _verb(verbs, "run", cmd_run, "run a pipeline on an embedded or existing Ray cluster",
          ["pipelines/zinc_ingest.toml", "pipelines/zinc_ingest.toml --force ingest_train",
           "pipelines/zinc_ingest.toml --address 10.0.0.5:6379 --run-dir /shared/runs/zinc"],
          parents=[run_flags()])
    sub = _verb(verbs, "submit", cmd_submit, "submit a pipeline as a Ray Job; prints the job id",
                ["pipelines/zinc_ingest.toml --address http://127.0.0.1:8265"])
    sub.add_argument("pipeline", type=Path, help="pipeline TOML file (see pipelines/)")
    sub.add_argument("--run-dir", type=Path, help="run directory on storage the cluster sees")
    sub.add_argument("--profile", metavar="NAME", help="apply the file's [profiles.NAME] overrides")
    status = _verb(verbs, "status", cmd_status, "show a job's status, or all jobs",
                   ["", "raysubmit_XXXX --address http://127.0.0.1:8265"])
    status.add_argument("job_id", nargs="?", metavar="ID")
    logs = _verb(verbs, "logs", cmd_logs, "print a job's driver log", ["raysubmit_XXXX"])
    logs.add_argument("job_id", metavar="ID")
    for p in (sub, status, logs):
        p.add_argument("--address", help="job server URL (default: RAY_API_SERVER_ADDRESS, "
                       "else http://127.0.0.1:8265)")
    query = _verb(verbs, "query", cmd_query, "rows of a latent store by ids, filter or neighbours",
                  ['STORE --where "qed > 0.8 and sa < 3" --limit 10',
                   "STORE --knn-of zinc-train-42 -k 5 --json", "STORE --out rows.parquet"])
    _query_flags(query)
    enc = _verb(verbs, "encode", cmd_encode, "encode SMILES into a latent store with a trained VAE",
                ["--model runs/zinc_vae/stages/train-ID/model --smiles mols.smi --out mols.zarr"])
    enc.add_argument("--model", help=SHIPPED_HELP + " (or an MLflow URI, runs:/ID/checkpoint)")
    enc.add_argument("--smiles", type=Path, required=True, help=".smi/.csv/.parquet file")
    enc.add_argument("--smiles-column", default="smiles", help="column of CSV/Parquet input")
    enc.add_argument("--out", type=Path, required=True, help="new latent store (.zarr)")
    smp = _verb(verbs, "sample", cmd_sample, "sample molecules from a trained VAE",
                ["-n 10 --out s.smi", "--model runs/zinc_vae/stages/train-ID/model -n 1000 "
                 "--from-store runs/zinc_vae/stages/encode-ID/latents.zarr --out samples.smi"])
    smp.add_argument("--model", help=SHIPPED_HELP + " (or an MLflow URI)")
    smp.add_argument("-n", type=int, required=True, help="how many molecules")
    smp.add_argument("--out", type=Path, required=True, help="SMILES file to write")
    smp.add_argument("--temperature", type=float, default=1.0,
                     help="1 = sample tokens (the pipeline's sample stage), 0 = greedy decoding")
    smp.add_argument("--seed", type=int, default=0)
    source = smp.add_mutually_exclusive_group()
    source.add_argument("--from-store", type=Path, metavar="STORE",
                        help="draw z from a Gaussian fitted to this latent store's molecules (its "
                        "train split if it has one)")
    source.add_argument("--prior", action="store_true",
                        help="draw z from the N(0, I) prior (default: the Gaussian fitted to the "
                        "model's training molecules, saved beside it, when there is one)")
    for p in (enc, smp):
        p.add_argument("--address", help="Ray cluster HOST:PORT or auto (default: RAY_ADDRESS, "
                       "else an embedded local Ray)")
    ev = _verb(verbs, "evaluate", cmd_evaluate, "MOSES metrics of generated SMILES vs train/test",
               ["--samples samples.smi --train data/molecules/zinc_train_86k.smi "
                "--test data/molecules/zinc_valid_24k.smi --json"])
    ev.add_argument("--samples", type=Path, required=True,
                    help="generated SMILES, one per line (an empty line is a failed sample)")
    ev.add_argument("--train", type=Path, required=True, help="training set (.smi/.csv/.parquet)")
    ev.add_argument("--test", type=Path, required=True, help="test set (.smi/.csv/.parquet)")
    ev.add_argument("--smiles-column", default="smiles", help="column of CSV/Parquet sets")
    ev.add_argument("-k", type=int, nargs="+", default=[1000, 10000], help="unique@k sizes")
    ev.add_argument("--no-fcd", action="store_true", help="skip FCD (ChemNet)")
    ev.add_argument("--device", default="cpu", help="torch device for FCD (cpu, cuda)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ro = _verb(verbs, "rollout", cmd_rollout, "forecast fields with a trained latent surrogate",
               ["--surrogate runs/ns2d/stages/flow-ID/model --initial fields.zarr --steps 40 "
                "--out forecast.zarr --members 8"])
    ro.add_argument("--surrogate", required=True, help="surrogate model folder")
    ro.add_argument("--initial", required=True,
                    help="field array (Zarr or The Well HDF5) or an encoded latent store")
    ro.add_argument("--steps", type=int, required=True, help="how many steps to forecast")
    ro.add_argument("--out", type=Path, required=True, help="new Zarr field store to write")
    ro.add_argument("--members", type=int, default=1, help="ensemble members (flow surrogates)")
    ro.add_argument("--start", type=int, help="first frame to forecast; the frames before it "
                    "are the history (default: right after the frames the surrogate needs)")
    ro.add_argument("--seed", type=int, default=0)
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse, dispatch, and turn user mistakes into one line on stderr with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except LatentsciError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""What the verbs share: how a verb is declared, the flags several take, defaults read from the
stage configs (so a verb and the stage doing the same work agree), and Ray for the verbs that fan
out."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import BaseModel

SHIPPED_HELP = ("model folder (default: the molecule model shipped in "
                "data/models/zinc-vae-v2, see its MODEL_CARD.md)")


def verb(verbs, name: str, fn, text: str, examples: list[str], parents=(),
         group: str = "") -> argparse.ArgumentParser:
    """One subcommand (of a verb `group` such as `ood`, if given): a one-line help, examples in
    its epilog, and the function it calls."""
    words = f"{group} {name}" if group else name
    epilog = "examples:\n" + "\n".join(f"  latentsci {words} {e}" for e in examples)
    p = verbs.add_parser(name, help=text, description=text, epilog=epilog, parents=list(parents),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(fn=fn)
    return p


def default_of(config: type[BaseModel], name: str):
    """The default of a stage config's field: the one source both the stage and a verb use."""
    field = config.model_fields[name]
    return field.default_factory() if field.default_factory is not None else field.default


def ray_address_flag(parser: argparse.ArgumentParser) -> None:
    """--address of the Ray cluster a verb fans its work out on."""
    parser.add_argument("--address", help="Ray cluster HOST:PORT or auto (default: RAY_ADDRESS, "
                        "else an embedded local Ray)")


def job_server_flag(parser: argparse.ArgumentParser) -> None:
    """--address of the Ray job server the job verbs talk to."""
    parser.add_argument("--address", help="job server URL (default: RAY_API_SERVER_ADDRESS, "
                        "else http://127.0.0.1:8265)")


def on_ray(address: str | None, work):
    """Run `work()` with Ray joined or started, shutting down only what this call started."""
    from latentsci.runtime import connect, disconnect

    info = connect(address)
    try:
        return work()
    finally:
        if info.owned:
            disconnect()


def local_model(model: str | None) -> str:
    """A molecule model folder on local disk (MLflow URIs are downloaded first), checked to be
    ours; the shipped model when none is given."""
    from latentsci.molecules.vae.checkpoint import read_meta
    from latentsci.molecules.vae.shipped import shipped_model_dir

    if model is None:
        model = str(shipped_model_dir())
    if "://" in model or model.startswith(("runs:", "models:")):
        import mlflow

        model = mlflow.artifacts.download_artifacts(model)
    read_meta(Path(model))
    return str(Path(model).resolve())

"""The `evaluate` stage: MOSES metrics of the samples, and reconstruction of held-out molecules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from latentsci.errors import InputDataError
from latentsci.pipeline.stage import ONE, ONE_OR_MORE
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult


class EvaluateConfig(StageConfig):
    """Parameters of the `evaluate` stage (MOSES metrics, reconstruction on held-out molecules)."""

    test_splits: list[str] = Field(default_factory=lambda: ["test"])
    ks: list[int] = Field(default_factory=lambda: [1000, 10000])
    fcd: bool = True
    reconstruction_molecules: int = Field(default=500, ge=0)
    reconstruction_decodes: int = Field(default=5, gt=0)
    # z for reconstruction: draws from q(z|x) (`reconstruction_decodes` each), or its mean
    # decoded once, greedily (the encode-decode round trip interpolation and search rely on)
    reconstruction_from: Literal["posterior", "mean"] = "posterior"
    seed: int = 0


def evaluate(config: EvaluateConfig, ctx: StageContext) -> StageResult:
    """MOSES metrics of the samples vs train and test splits, and held-out reconstruction."""
    from latentsci.molecules.ingest import read_generated
    from latentsci.molecules.stages.common import molecules
    from latentsci.molecules.tasks import evaluate_job
    from latentsci.runtime import map_batches

    table = molecules(ctx)
    test = table.loc[table["split"].isin(config.test_splits), "smiles"].tolist()
    if not test:
        raise InputDataError(f"stage {ctx.name}: no molecules in splits {config.test_splits}")
    train_smiles = table.loc[table["split"] == "train", "smiles"].tolist()
    samples = read_generated(Path(ctx.output("samples")))
    results = map_batches(evaluate_job, ["moses", "reconstruction"], desc=f"{ctx.name}",
                          weight=lambda _: 1, samples=samples, train=train_smiles, test=test,
                          model_dir=ctx.shared(ctx.output("codec")), options=config.model_dump())
    metrics = {k: float(v) for part in results for k, v in part.items()}
    path = ctx.out_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2))  # MOSES's own names, e.g. unique@1000
    mlflow_names = {k.replace("@", "_at_"): v for k, v in metrics.items()}  # '@' is not allowed
    return StageResult(outputs={"metrics": str(path)}, metrics=mlflow_names, artifacts=[path])


EVALUATE = Stage("evaluate", EvaluateConfig, evaluate,
                 reads={"molecules": ONE_OR_MORE, "samples": ONE, "codec": ONE},
                 gives=("metrics",))

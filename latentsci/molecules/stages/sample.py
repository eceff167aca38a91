"""The `sample` stage: molecules decoded across Ray tasks from the prior or a fitted latent Gaussian."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from latentsci.pipeline.stage import ONE, OPTIONAL
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult

if TYPE_CHECKING:
    from latentsci.latent.gaussian import LatentGaussian


class SampleConfig(StageConfig):
    """Parameters of the `sample` stage (the CLI's `sample` verb takes its defaults from here)."""

    n: int = Field(default=1000, gt=0)
    temperature: float = Field(default=1.0, ge=0)  # 1: sample tokens (MOSES VAE); 0: greedy
    seed: int = 0
    per_task: int = Field(default=500, gt=0)
    # where z comes from: "prior" N(0, I), or "aggregate", a Gaussian fitted to the encoded
    # training molecules of a needed encode stage (no prior holes: latentsci/latent/gaussian.py)
    latent: Literal["prior", "aggregate"] = "prior"
    aggregate_molecules: int = Field(default=20000, gt=0)


def _latent_source(config: SampleConfig, ctx: StageContext) -> LatentGaussian | None:
    """The distribution z is drawn from (None: the model's prior)."""
    from latentsci.latent.gaussian import LatentGaussian

    if config.latent == "prior":
        return None
    return LatentGaussian.from_store(ctx.output("store"), "train", config.aggregate_molecules,
                                     config.seed)


def sample(config: SampleConfig, ctx: StageContext) -> StageResult:
    """n molecules decoded across Ray tasks from the prior or the fitted latent Gaussian;
    written one SMILES per line (torch, RDKit and plotting load here, not on import: the CLI reads
    this module for its defaults)."""
    from latentsci.molecules.metrics.moses import fraction_valid
    from latentsci.molecules.plots import molecule_grid
    from latentsci.molecules.tasks import sample_molecules

    samples = sample_molecules(ctx.shared(ctx.output("codec")), config.n, config.per_task, config.seed,
                               config.temperature, ctx.progress, _latent_source(config, ctx))
    path = ctx.out_dir / "samples.smi"
    path.write_text("\n".join(samples) + "\n")
    grid = molecule_grid(samples[:24], ctx.out_dir / "samples_grid.png")
    return StageResult(outputs={"samples": str(path)},
                       metrics={"samples": float(len(samples)), "valid": fraction_valid(samples)},
                       artifacts=[grid])


def _reads(config: SampleConfig) -> dict[str, str]:
    """A model always; a latent store of encoded training molecules for latent = 'aggregate'."""
    return {"codec": ONE, "store": ONE if config.latent == "aggregate" else OPTIONAL}


SAMPLE = Stage("sample", SampleConfig, sample, reads=_reads, gives=("samples",))

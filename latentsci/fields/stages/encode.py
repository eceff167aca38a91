"""The fields' `encode` stage: every frame's latent into a latent store with trajectory, time and
parameter columns."""

from __future__ import annotations

from pydantic import Field

from latentsci.fields.encode import encode_fields
from latentsci.fields.stages.common import test_from
from latentsci.pipeline.stage import ONE, Stage, StageConfig, StageContext, StageResult


class FieldEncodeConfig(StageConfig):
    """Trajectories per Ray task (and per store shard)."""

    per_task: int = Field(default=8, gt=0)


def encode(config: FieldEncodeConfig, ctx: StageContext) -> StageResult:
    """Every frame's latent into a latent store with trajectory, time and parameter columns."""
    fields, model_dir = ctx.output("fields"), ctx.output("codec")
    store = encode_fields(fields, ctx.shared(model_dir), ctx.store_address("latents.zarr"),
                          test_from(ctx), config.per_task,
                          ctx.provenance(), ctx.progress)
    return StageResult(outputs={"store": str(store.path)},
                       metrics={"rows": float(len(store)), "dim": float(store.dim)})


ENCODE = Stage("encode", FieldEncodeConfig, encode,
               reads={"fields": ONE, "codec": ONE, "split": ONE}, gives=("store",))

"""The `encode` stage: every ingested molecule's latent mean and std into a latent store."""

from __future__ import annotations

from pydantic import Field

from latentsci.pipeline.stage import ONE, ONE_OR_MORE
from latentsci.pipeline.stage import Stage, StageConfig, StageContext, StageResult


class EncodeConfig(StageConfig):
    """Parameters of the `encode` stage."""

    rows_per_shard: int | None = Field(default=4096, gt=0)


def encode(config: EncodeConfig, ctx: StageContext) -> StageResult:
    """Every ingested molecule's latent mean and std into a store, one Ray task per block."""
    from latentsci.molecules.stages.common import STORE_PROPERTIES, molecules, store_map
    from latentsci.molecules.tasks import encode_table
    from latentsci.store import LatentStore

    table = molecules(ctx)
    store_path = ctx.store_address("latents.zarr")
    trained = ctx.givers("codec")[0]
    report = encode_table(table, ctx.shared(ctx.output("codec")), store_path, STORE_PROPERTIES,
                          {"model_version": trained.config_hash,
                           "model_mlflow_run_id": trained.mlflow_run_id, **ctx.provenance()},
                          config.rows_per_shard, ctx.progress)
    rejects = ctx.out_dir / "rejects.csv"
    report.to_csv(rejects, index=False)
    plot = store_map(LatentStore.open(store_path), ctx.out_dir / "latent_map.png", "VAE z")
    return StageResult(outputs={"store": str(store_path), "rejects": str(rejects)},
                       metrics={"rows": float(len(table)), "rejected": float(len(report))},
                       artifacts=[plot, rejects])


ENCODE = Stage("encode", EncodeConfig, encode, reads={"molecules": ONE_OR_MORE, "codec": ONE},
               gives=("store", "rejects"))

"""The `fingerprints` stage: a model-free baseline latent space (Morgan counts) in a latent store."""

from __future__ import annotations

from pydantic import Field

from latentsci.molecules.stages.common import STORE_PROPERTIES, molecules, store_map
from latentsci.molecules.tasks import embed_block
from latentsci.pipeline.stage import ONE_OR_MORE, Stage, StageConfig, StageContext, StageResult
from latentsci.runtime import map_batches
from latentsci.store import LatentStore


class FingerprintConfig(StageConfig):
    """Parameters of the `fingerprints` stage (a model-free baseline latent space)."""

    radius: int = Field(default=2, ge=0, le=6)
    n_bits: int = Field(default=128, gt=0, le=8192)
    rows_per_shard: int | None = Field(default=None, gt=0)


def fingerprints(config: FingerprintConfig, ctx: StageContext) -> StageResult:
    """Embed every molecule of the needed ingest stages as Morgan counts into one latent store."""
    table = molecules(ctx)
    store_path = ctx.store_address("fingerprints.zarr")
    properties = STORE_PROPERTIES
    store = LatentStore.create(store_path, len(table), config.n_bits, properties,
                               rows_per_shard=config.rows_per_shard,
                               attrs={"model": "morgan-counts", "model_version": "1",
                                      "radius": config.radius, **ctx.provenance()})
    blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
    written = map_batches(embed_block, blocks, desc=f"{ctx.name}: embed", progress=ctx.progress,
                          weight=lambda b: b[1] - b[0], store_path=str(store_path),
                          rows=table[["id", *properties]], radius=config.radius,
                          n_bits=config.n_bits)
    store.finalize(source_stages=list(ctx.inputs))
    plot = store_map(store, ctx.out_dir / "latent_map.png")
    return StageResult(outputs={"store": str(store_path)},
                       metrics={"rows": float(sum(written)), "dim": float(config.n_bits)},
                       artifacts=[plot])


FINGERPRINTS = Stage("fingerprints", FingerprintConfig, fingerprints,
                     reads={"molecules": ONE_OR_MORE}, gives=("store",))

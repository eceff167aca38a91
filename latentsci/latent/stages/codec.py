"""The `codec` stage: a model trained elsewhere (a shipped model, another run's checkpoint, an
MLflow URI) handed to the stages after it as their `codec`, so a pipeline can encode, sample,
interpolate and check OOD without training first."""

from __future__ import annotations

from pydantic import model_validator

from latentsci.pipeline.stage import InputPath, Stage, StageConfig, StageContext, StageResult


class CodecConfig(StageConfig):
    """Exactly one of `path` (a model folder) or `uri` (MLflow, e.g. runs:/ID/checkpoint).

    `weights_sha256` pins the weights: left out, it is filled from the folder, so the stage's id
    (and every id after it) changes when the model at `path` is replaced; given, a folder
    holding other weights is refused."""

    path: InputPath | None = None
    uri: str | None = None
    weights_sha256: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> CodecConfig:
        """One source; the weights' digest of a folder filled in or checked."""
        from latentsci.latent.codec import WEIGHTS_FILE, weights_sha256

        if (self.path is None) == (self.uri is None):
            raise ValueError("give one of path (a model folder) or uri (an MLflow URI)")
        if self.path is not None:
            if not (self.path / WEIGHTS_FILE).is_file():
                raise ValueError(f"{self.path} is not a model folder (no {WEIGHTS_FILE})")
            found = weights_sha256(self.path)
            if self.weights_sha256 and self.weights_sha256 != found:
                raise ValueError(f"{self.path}: weights_sha256 {self.weights_sha256[:12]}... "
                                 f"pinned, the folder holds {found[:12]}...")
            object.__setattr__(self, "weights_sha256", found)
        return self


def use_codec(config: CodecConfig, ctx: StageContext) -> StageResult:
    """Load the model once as a codec (refusing anything that is not one) and hand it on."""
    from latentsci.latent.codec import latent_dim, load_codec

    source = str(config.path) if config.path is not None else str(config.uri)
    codec = load_codec(source)
    return StageResult(outputs={"codec": source},
                       metrics={"latent_dim": float(latent_dim(codec))})


CODEC = Stage("codec", CodecConfig, use_codec, reads={}, gives=("codec",))

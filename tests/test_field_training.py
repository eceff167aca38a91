"""Field-model training on Ray Train: the shared loop resumes a rerun and refuses bad input."""

import numpy as np
import pytest

from latentsci.fields.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.field_checkpoint import AUTOENCODER_KIND
from latentsci.fields.field_store import create_field_store, write_block
from latentsci.fields.registry import load_model, save_model
from latentsci.fields.training import FieldTrainConfig, train_field_model


def _fields(path, n=4):
    """A tiny periodic field store: smooth random waves, 3 frames each."""
    x = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    rng = np.random.default_rng(0)
    data = np.stack([[[np.sin(x[:, None] * a + t) * np.cos(x[None, :] * b)]
                      for t in range(3)] for a, b in rng.integers(1, 3, (n, 2))])
    create_field_store(path, n, np.arange(3.0), ["w"], (16, 16), ["viscosity"], n)
    write_block(path, 0, data.astype("float32"), np.ones(n, bool), {"viscosity": np.ones(n)})
    return str(path)


def test_autoencoder_training_resumes_on_rerun(ray_cluster, tmp_path):
    fields = _fields(tmp_path / "f.zarr")
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2,
                                                           blocks=1, latent_channels=2))
    initial = save_model(tmp_path / "initial", model, {"kind": AUTOENCODER_KIND})
    data = {"dataset": "frames", "kwargs": {"fields_path": fields, "trajectories": [0, 1, 2, 3]}}

    def train(epochs, out):
        config = FieldTrainConfig(epochs=epochs, batch_size=4, num_workers=1)
        return train_field_model(initial, data, config, "ae", tmp_path / "state", tmp_path / out)

    first, again = train(2, "m1"), train(3, "m2")
    assert [r["epoch"] for r in first] == [0, 1]
    assert [r["epoch"] for r in again] == [0, 1, 2] and again[-1]["attempt_start_epoch"] == 2
    assert again[-1]["loss"] < first[0]["loss"]
    trained, meta = load_model(tmp_path / "m2")
    assert meta["kind"] == AUTOENCODER_KIND and trained.compression_ratio((16, 16)) == 8.0


def test_unknown_training_key_is_refused():
    with pytest.raises(ValueError, match="epoch"):
        FieldTrainConfig(epoch=3)

"""Field-model training on Ray Train: the shared loop resumes a rerun and refuses bad input."""

import numpy as np
import pytest

from latentsci.fields.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.field_checkpoint import AUTOENCODER_KIND
from latentsci.fields.field_store import create_field_store, write_block
from latentsci.fields.registry import load_model, save_model
from latentsci.fields.training import FieldTrainConfig, FieldTrainingError, train_field_model

from conftest import train_killing_one_worker


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


def _initial(tmp_path):
    """A tiny untrained autoencoder saved where training starts from."""
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2,
                                                           blocks=1, latent_channels=2))
    return save_model(tmp_path / "initial", model, {"kind": AUTOENCODER_KIND})


def test_training_resumes_mid_epoch_after_a_worker_is_killed(ray_cluster, tmp_path):
    fields, initial = _fields(tmp_path / "f.zarr", n=8), _initial(tmp_path)
    data = {"dataset": "frames", "kwargs": {"fields_path": fields, "trajectories": list(range(8))}}
    # 12 frames per worker, batches of 1: 12 steps an epoch, so the kill (soon after the first
    # checkpoint) almost always lands mid-epoch and the resume must skip the batches done
    config = FieldTrainConfig(epochs=10, batch_size=1, num_workers=2, checkpoint_every_steps=1)
    storage = tmp_path / "state"
    history = train_killing_one_worker(
        lambda: train_field_model(initial, data, config, "ae", storage, tmp_path / "model"),
        storage / "ae")
    assert [row["epoch"] for row in history] == list(range(10))
    assert history[-1]["attempt_start_step"] > 0  # the last attempt resumed, not restarted
    # no step repeated or skipped by the resume
    assert all(row["step"] == 12 * (row["epoch"] + 1) for row in history)
    trained, meta = load_model(tmp_path / "model")
    assert meta["step"] == 120 and meta["batches_done"] is None


def test_non_finite_loss_names_the_step_and_keeps_the_checkpoint(ray_cluster, tmp_path):
    fields = _fields(tmp_path / "f.zarr")
    initial = _initial(tmp_path)
    data = {"dataset": "frames", "kwargs": {"fields_path": fields, "trajectories": [0, 1, 2, 3]}}
    # a checkpoint after the first step, then the huge step sends the weights to inf
    config = FieldTrainConfig(epochs=2, batch_size=4, num_workers=1, lr=1e30,
                              checkpoint_every_steps=1)
    with pytest.raises(FieldTrainingError, match=r"training stopped: loss is .* in batch \d+ of "
                       r"epoch \d+; the last good checkpoint is kept under .*state/ae$"):
        train_field_model(initial, data, config, "ae", tmp_path / "state", tmp_path / "model")
    assert list((tmp_path / "state" / "ae").glob("checkpoint_*"))


def test_a_worker_without_examples_is_one_line(ray_cluster, tmp_path):
    fields, initial = _fields(tmp_path / "f.zarr"), _initial(tmp_path)
    data = {"dataset": "frames", "kwargs": {"fields_path": fields, "trajectories": []}}
    with pytest.raises(FieldTrainingError, match="a training worker got no examples .*; no "
                       "checkpoint was written before it"):
        train_field_model(initial, data, FieldTrainConfig(epochs=1, max_failures=0), "ae",
                          tmp_path / "state", tmp_path / "model")


def test_unknown_training_key_is_refused():
    with pytest.raises(ValueError, match="epoch"):
        FieldTrainConfig(epoch=3)

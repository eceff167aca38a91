"""Field-model training on Ray Train: the shared loop resumes a rerun and refuses bad input."""

import re

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.networks.checkpoint import AUTOENCODER_KIND
from latentsci.fields.data.writer import create_field_store, write_block
from latentsci.fields.networks.registry import load_model, save_model
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
    # the rerun's first two rows are the first run's, read back from its checkpoint, not retrained
    assert again[:2] == first
    assert again[-1]["loss"] < first[0]["loss"]
    trained, meta = load_model(tmp_path / "m2")
    assert meta["kind"] == AUTOENCODER_KIND and trained.compression_ratio((16, 16)) == 8.0
    # training moved every weight (and left the normalisation buffers alone); the resumed third
    # epoch moved them again from where the first run stopped
    start, stopped = load_model(initial)[0].state_dict(), load_model(tmp_path / "m1")[0].state_dict()
    buffers = {name for name, _ in trained.named_buffers()}
    for name, value in trained.state_dict().items():
        if name in buffers:
            assert torch.equal(value, start[name]), name
        else:
            assert not torch.equal(value, start[name]), name
            assert not torch.equal(value, stopped[name]), name


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
    with pytest.raises(FieldTrainingError) as info:
        train_field_model(initial, data, config, "ae", tmp_path / "state", tmp_path / "model")
    run = tmp_path / "state" / "ae"
    found = re.fullmatch(r"training stopped: loss is (nan|inf|-inf) at step \d+ \(batch (\d+) of epoch (\d+)\); "
                         r"the last good checkpoint is kept under (.*)", str(info.value))
    assert found and found[4] == str(run), str(info.value)
    batch, epoch = int(found[2]), int(found[3])
    # the newest checkpoint is a loadable model written right before the batch that failed: the
    # step with lr 1e30 changed its weights, and nothing after that step was saved
    newest = sorted(p for p in run.glob("checkpoint_*") if p.is_dir())[-1]
    model, meta = load_model(newest)
    assert (epoch, batch) == (0, 1)  # 3 batches an epoch: the first giant step breaks the second
    assert (meta["epoch"], meta["batches_done"], meta["step"]) == (epoch, batch, 1)
    assert meta["kind"] == AUTOENCODER_KIND and meta["history"] == []
    start = load_model(initial)[0].state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_a_worker_without_examples_is_one_line(ray_cluster, tmp_path):
    fields, initial = _fields(tmp_path / "f.zarr"), _initial(tmp_path)
    data = {"dataset": "frames", "kwargs": {"fields_path": fields, "trajectories": []}}
    with pytest.raises(FieldTrainingError, match="a training worker got no examples .*; no "
                       "checkpoint was written before it"):
        train_field_model(initial, data, FieldTrainConfig(epochs=1, max_failures=0), "ae",
                          tmp_path / "state", tmp_path / "model")


def test_unknown_training_key_is_refused():
    with pytest.raises(ValidationError) as info:
        FieldTrainConfig(epoch=3)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("epoch",), "extra_forbidden")]

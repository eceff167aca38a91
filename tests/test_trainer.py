"""The one training loop's parts: every model's stage config is the trainer config plus a nested
`model`; optimiser, schedule, clipping and the non-finite stop behave one way, configured."""

import pytest
import torch

from latentsci.fields.stages.autoencoder import AutoencoderStageConfig
from latentsci.fields.stages.surrogate import SurrogateStageConfig
from latentsci.fields.training import FieldTrainConfig
from latentsci.molecules.vae.train import TrainConfig
from latentsci.runtime.train import cosine_lr
from latentsci.runtime.trainer import (
    NonFiniteLoss,
    TrainerConfig,
    epoch_lr,
    make_optimizer,
    optimise,
)

STAGE_CONFIGS = (TrainConfig, AutoencoderStageConfig, SurrogateStageConfig)


def test_every_training_stage_is_the_trainer_config_with_a_nested_model():
    for config in STAGE_CONFIGS:
        assert issubclass(config, TrainerConfig), config
        assert set(TrainerConfig.model_fields) <= set(config.model_fields)
        assert "model" in config.model_fields
        assert config.execution_fields == TrainerConfig.execution_fields


def test_domain_defaults_differ_only_where_documented():
    """The molecule VAE keeps Adam without decay; the field models AdamW with cosine decay."""
    def differing(a, b):
        return {k for k in TrainerConfig.model_fields if getattr(a, k) != getattr(b, k)}

    molecule, field = TrainConfig(), FieldTrainConfig()
    assert differing(molecule, field) == {"batch_size", "optimizer", "weight_decay", "lr_decay"}
    assert (molecule.optimizer, molecule.weight_decay, molecule.lr_decay) == ("adam", 0.0, "none")
    assert (field.optimizer, field.weight_decay, field.lr_decay) == ("adamw", 0.01, "cosine")
    assert AutoencoderStageConfig().trainer_part() == field.trainer_part()


def test_optimizer_and_schedule_follow_the_config():
    params = [torch.nn.Parameter(torch.ones(3))]
    adam = make_optimizer(params, TrainConfig(lr=0.01))
    adamw = make_optimizer(params, FieldTrainConfig(lr=0.02, weight_decay=0.1))
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 0.0
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["weight_decay"] == 0.1
    assert epoch_lr(TrainConfig(lr=0.01, epochs=4), 3) == 0.01
    cosine = FieldTrainConfig(lr=0.01, epochs=4)
    assert [epoch_lr(cosine, e) for e in range(4)] == [cosine_lr(0.01, e, 4) for e in range(4)]


def _step(grad_clip, scale=100.0):
    layer = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    loss = scale * layer(torch.ones(1, 4)).sum()
    optimise(layer, loss, optimizer, grad_clip, step=0)
    return layer.weight.detach()


def test_gradients_are_clipped_to_the_configured_norm():
    clipped = 1.0 - _step(grad_clip=1.0)  # SGD with lr 1: the update is the (clipped) gradient
    assert torch.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(1.0 - _step(grad_clip=None), torch.full((1, 4), 100.0))


def test_a_non_finite_loss_stops_before_the_step_and_names_it():
    layer = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in layer.parameters()]
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    loss = layer(torch.tensor([[float("nan"), 1.0]])).sum()
    with pytest.raises(NonFiniteLoss) as err:
        optimise(layer, loss, optimizer, 1.0, step=12, where=" (batch 3 of epoch 1)")
    assert str(err.value) == "loss is nan at step 12 (batch 3 of epoch 1)" and err.value.step == 12
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_unknown_trainer_key_is_refused_in_every_training_stage():
    for config in STAGE_CONFIGS:
        with pytest.raises(ValueError, match="optimiser"):
            config(optimiser="adam")


def test_a_non_finite_loss_survives_the_trip_from_a_worker():
    """Ray pickles a worker's exception to the driver; the step and message must come along."""
    import pickle

    again = pickle.loads(pickle.dumps(NonFiniteLoss(7, float("inf"), " (batch 2 of epoch 0)")))
    assert str(again) == "loss is inf at step 7 (batch 2 of epoch 0)" and again.step == 7

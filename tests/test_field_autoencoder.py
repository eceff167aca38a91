"""FieldAutoencoder: shapes, periodic shift equivariance, units, overfitting, checkpoint files."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from latentsci.errors import LatentsciError
from latentsci.fields.networks.autoencoder import (FieldAutoencoderConfig, build_field_autoencoder,
                                          double_grid)
from latentsci.fields.networks.checkpoint import (AUTOENCODER_KIND, FieldModelError,
                                               autoencoder_from_config, load_field_autoencoder,
                                               load_field_model, read_field_meta,
                                               save_field_autoencoder, save_field_model)
from latentsci.fields.solvers.navier_stokes import gaussian_random_field

SMALL = dict(width=8, levels=2, blocks=1, latent_channels=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_model(channels: int = 1, **changes) -> torch.nn.Module:
    """A tiny autoencoder for tests."""
    config = FieldAutoencoderConfig(channels=channels, **{**SMALL, **changes})
    return build_field_autoencoder(config)


def scramble(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, so zero-initialised residual convs are exercised too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return model


def smooth_frames(n: int, grid: int, scales: list[tuple[float, float]],
                  seed: int = 0) -> torch.Tensor:
    """n smooth periodic frames, one channel per (mean, std) in scales."""
    generator = torch.Generator().manual_seed(seed)
    channels = []
    for mean, std in scales:
        field = gaussian_random_field(n, grid, alpha=2.5, tau=7.0, generator=generator)
        channels.append(mean + std * field / field.std())
    return torch.stack(channels, dim=1)


def test_shapes_and_compression_ratio():
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, levels=3, latent_channels=1))
    assert model.latent_shape((64, 64)) == (1, 8, 8)
    assert model.compression_ratio((64, 64)) == 64.0
    x = torch.randn(2, 1, 64, 64)
    z = model.encode(x)
    assert z.shape == (2, 1, 8, 8)
    assert model.decode(z).shape == x.shape
    assert model(x).shape == ()
    wide = build_field_autoencoder(FieldAutoencoderConfig(channels=2, levels=2, latent_channels=4))
    assert wide.latent_shape((32, 48)) == (4, 8, 12)
    assert wide.compression_ratio((32, 48)) == 8.0


def test_default_widths_double_then_cap_at_four():
    assert FieldAutoencoderConfig(channels=1, width=8, levels=4).level_widths() == [8, 16, 32, 32]
    given = FieldAutoencoderConfig(channels=1, width=8, levels=2, width_multiplier=[1, 3])
    assert given.level_widths() == [8, 24]


@pytest.mark.parametrize("changes, message", [
    (dict(width_multiplier=[1, 2]), "width_multiplier has 2 entries, expected one per level "
                                    "(levels=3)"),
    (dict(width_multiplier=[1, 0, 2]), "width_multiplier entries must be >= 1, got [1, 0, 2]"),
])
def test_config_rejects_bad_multipliers(changes, message):
    with pytest.raises(ValidationError) as info:
        FieldAutoencoderConfig(channels=1, levels=3, **changes)
    assert info.value.errors()[0]["msg"] == f"Value error, {message}"


def test_config_rejects_unknown_keys_and_zero_channels():
    with pytest.raises(ValidationError) as info:
        FieldAutoencoderConfig(channels=1, depth=3)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("depth",), "extra_forbidden")]
    with pytest.raises(ValidationError) as info:
        FieldAutoencoderConfig(channels=0)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("channels",), "greater_than_equal")]


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_periodic_model_commutes_with_shifts_by_one_latent_cell(upsample):
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    model = scramble(small_model(upsample=upsample)).eval()
    with torch.no_grad():
        z = model.encode(x)
        z_shifted = model.encode(torch.roll(x, 4, dims=-2))  # 2^levels = 4 pixels
        y_shifted = model.decode(torch.roll(z, 1, dims=-2))
    torch.testing.assert_close(z_shifted, torch.roll(z, 1, dims=-2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y_shifted, torch.roll(model.decode(z), 4, dims=-2),
                               atol=1e-5, rtol=0)


def test_periodic_bilinear_doubling_wraps_and_matches_the_interior():
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    y = double_grid(x, "bilinear", periodic=True)
    assert y.shape == (1, 2, 12, 12)
    # one coarse cell of shift is exactly two fine cells, across the edges too
    torch.testing.assert_close(double_grid(torch.roll(x, (1, -1), (-2, -1)), "bilinear", True),
                               torch.roll(y, (2, -2), (-2, -1)), atol=1e-6, rtol=0)
    plain = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
    torch.testing.assert_close(y[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])  # away from edges
    # at the edge it blends with the opposite side: 3/4 of the first cell, 1/4 of the last
    torch.testing.assert_close(y[..., 0, 4], 0.75 * (0.75 * x[..., 0, 2] + 0.25 * x[..., 0, 1])
                               + 0.25 * (0.75 * x[..., -1, 2] + 0.25 * x[..., -1, 1]))


def test_checkpoints_without_the_upsample_key_keep_nearest(tmp_path):
    import json

    folder = save_field_autoencoder(tmp_path / "ae", small_model(), extra={})
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["upsample"]  # what a checkpoint written before the option holds
    meta_path.write_text(json.dumps(meta))
    loaded = load_field_autoencoder(folder)
    modes = {m.mode for m in loaded.decoder.modules() if hasattr(m, "mode")}
    assert loaded.config.upsample == "nearest" and modes == {"nearest"}


def test_zero_padded_model_does_not_commute_with_shifts():
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    model = scramble(small_model(periodic=False)).eval()
    with torch.no_grad():
        z = model.encode(x)
        z_shifted = model.encode(torch.roll(x, 4, dims=-2))
    assert (z_shifted - torch.roll(z, 1, dims=-2)).abs().max() > 1e-2


def test_grid_not_divisible_by_levels_is_one_line():
    model = small_model(levels=3)
    message = "grid 30x32 is not divisible by 2^3 = 8 (levels=3)"
    with pytest.raises(ValueError) as info:
        model.latent_shape((30, 32))
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        model.encode(torch.zeros(1, 1, 30, 32))
    assert str(info.value) == message


def test_wrong_channel_count_is_one_line():
    with pytest.raises(ValueError, match=r"^expected frames shaped \(batch, 2, x, y\), "
                                         r"got \(1, 1, 16, 16\)$"):
        small_model(channels=2).encode(torch.zeros(1, 1, 16, 16))


def test_fit_scale_sets_per_channel_mean_and_floored_std():
    frames = smooth_frames(3, 16, [(5.0, 0.1), (-300.0, 20.0)])
    frames[:, 1] = 7.0  # a constant channel
    model = small_model(channels=2)
    model.fit_scale(frames.numpy())
    expected_mean = torch.tensor([frames[:, 0].double().mean(), 7.0]).float()
    torch.testing.assert_close(model.mean, expected_mean)
    assert model.std[0].item() == pytest.approx(frames[:, 0].double().std(unbiased=False).item(),
                                                rel=1e-5)
    assert model.std[1].item() == pytest.approx(1e-6)
    with pytest.raises(ValueError, match=r"^fit_scale expects frames shaped \(n, 2, x, y\), "
                                         r"got \(3, 16, 16\)$"):
        model.fit_scale(frames[:, 0])


@pytest.fixture(scope="module")
def overfit():
    """A small two-channel model after 300 Adam steps on 4 smooth 32x32 frames of unlike scales."""
    torch.manual_seed(0)
    frames = smooth_frames(4, 32, [(5.0, 0.1), (-300.0, 20.0)])
    model = small_model(channels=2, latent_channels=4)
    model.fit_scale(frames)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        optimiser.zero_grad()
        loss = model(frames)
        loss.backward()
        optimiser.step()
    return model, frames


def test_short_overfit_reconstructs_within_ten_percent(overfit):
    model, frames = overfit
    with torch.no_grad():
        recon = model.reconstruct(frames)
    # error relative to each channel's fluctuation, so the large offsets do not flatter it
    centred = frames - frames.mean(dim=(0, 2, 3), keepdim=True)
    error = (recon - frames).square().sum((0, 2, 3)).sqrt()
    relative = error / centred.square().sum((0, 2, 3)).sqrt()
    assert relative.max() < 0.1


def test_decode_returns_physical_units(overfit):
    model, frames = overfit
    with torch.no_grad():
        recon = model.decode(model.encode(frames))
    # channel means within 5% of each channel's std: the offsets (5, -300) were restored
    offset = (recon.mean(dim=(0, 2, 3)) - frames.mean(dim=(0, 2, 3))).abs()
    assert (offset < 0.05 * torch.tensor([0.1, 20.0])).all()
    assert recon[:, 1].mean().item() == pytest.approx(-300.0, abs=1.0)


def test_forward_is_mse_in_normalised_units(overfit):
    model, frames = overfit
    with torch.no_grad():
        recon = model.reconstruct(frames)
        loss = model(frames)
    std = model.std[:, None, None]
    expected = (((recon - frames) / std) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-3)


def _trained(beta: float, frames: torch.Tensor, steps: int = 150) -> torch.nn.Module:
    """A small one-channel model after `steps` Adam steps at this beta."""
    torch.manual_seed(0)
    model = small_model(latent_channels=2, beta=beta)
    model.fit_scale(frames)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        model(frames).backward()
        optimiser.step()
    return model.eval()


def test_a_beta_vae_encodes_its_posterior_mean_and_more_beta_pulls_it_to_the_prior(tmp_path):
    frames = smooth_frames(8, 16, [(0.0, 1.0)])
    plain, light, heavy = (_trained(b, frames) for b in (0.0, 0.05, 5.0))
    assert light.encoder.head[-1].out_channels == 4 and plain.encoder.head[-1].out_channels == 2
    with torch.no_grad():
        assert torch.equal(light.encode(frames), light.encode(frames))  # the mean, not a draw
        norms = [m.encode(frames).square().mean().item() for m in (light, heavy)]
        errors = [(m.reconstruct(frames) - frames).square().mean().item()
                  for m in (plain, light, heavy)]
    assert norms[1] < norms[0]  # the KL term pulls the means towards zero
    assert errors[0] < errors[2] and errors[1] < errors[2]  # and costs reconstruction
    folder = save_field_autoencoder(tmp_path / "vae", light)
    loaded = load_field_autoencoder(folder)
    assert loaded.config.beta == 0.05
    with torch.no_grad():
        assert torch.equal(loaded.encode(frames), light.encode(frames))


def test_save_load_round_trip_gives_identical_outputs(tmp_path, overfit):
    model, frames = overfit
    folder = save_field_autoencoder(tmp_path / "ae", model, extra={"epochs": 3})
    loaded = load_field_autoencoder(folder)
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(frames), model.reconstruct(frames))
        assert torch.equal(loaded.encode(frames), model.encode(frames))
    assert torch.equal(loaded.mean, model.mean) and torch.equal(loaded.std, model.std)
    assert loaded.config == model.config
    meta = read_field_meta(folder)
    assert meta["format"] == "latentsci.field_model" and meta["format_version"] == 1
    assert meta["kind"] == AUTOENCODER_KIND and meta["epochs"] == 3
    assert meta["config"] == model.config.model_dump(mode="json")


def test_load_field_model_uses_the_registry_passed_in(tmp_path):
    model = small_model()
    folder = save_field_model(tmp_path / "m", model, "custom", model.config)
    built = []

    def builder(config: dict) -> torch.nn.Module:
        built.append(config)
        return autoencoder_from_config(config)

    loaded, meta = load_field_model(folder, {"custom": builder})
    assert built == [model.config.model_dump()] and meta["kind"] == "custom"
    assert torch.equal(loaded.encoder.stem.weight, model.encoder.stem.weight)


def test_extra_may_not_override_reserved_keys(tmp_path):
    model = small_model()
    with pytest.raises(ValueError, match=r"^extra metadata may not set kind \(reserved\)$"):
        save_field_model(tmp_path, model, AUTOENCODER_KIND, model.config, {"kind": "x"})


def saved(tmp_path, **changes):
    """A saved small autoencoder's folder."""
    return save_field_autoencoder(tmp_path / "ae", small_model(**changes))


def test_error_missing_files(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(tmp_path)
    assert str(info.value) == (f"{tmp_path}: not a latentsci field model "
                               f"(expected model.pt and meta.json)")
    assert isinstance(info.value, LatentsciError)


def test_error_invalid_json(tmp_path):
    folder = saved(tmp_path)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(FieldModelError) as info:
        read_field_meta(folder)
    assert str(info.value) == f"{folder}/meta.json: not valid JSON"


def test_error_format_not_ours(tmp_path):
    folder = saved(tmp_path)
    (folder / "meta.json").write_text(json.dumps({"format": "latentsci.molecule_vae"}))
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    assert str(info.value) == (f"{folder}: not a latentsci field model (format "
                               f"'latentsci.molecule_vae', expected 'latentsci.field_model')")


def test_error_newer_format_version(tmp_path):
    folder = saved(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(FieldModelError) as info:
        read_field_meta(folder)
    assert str(info.value) == (f"{folder}: field model format_version 2 is not one this "
                               f"latentsci reads (<= 1)")


def test_error_unknown_kind_lists_known(tmp_path):
    folder = saved(tmp_path)
    with pytest.raises(FieldModelError) as info:
        load_field_model(folder, {"surrogate": autoencoder_from_config,
                                  "other": autoencoder_from_config})
    assert str(info.value) == (f"{folder}: unknown field model kind 'field_autoencoder' "
                               f"(known: other, surrogate)")


def test_error_other_kind_for_load_field_autoencoder(tmp_path):
    model = small_model()
    folder = save_field_model(tmp_path / "s", model, "latent_surrogate", model.config)
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    assert str(info.value) == (f"{folder}: holds a 'latent_surrogate' field model, "
                               f"not a 'field_autoencoder'")


def test_error_config_that_does_not_build(tmp_path):
    folder = saved(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["depth"] = 3
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    assert str(info.value) == (f"{folder}/meta.json: config does not build a 'field_autoencoder': "
                               f"depth: Extra inputs are not permitted")


def test_error_weights_that_do_not_fit(tmp_path):
    folder = saved(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["width"] = 16
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    message = str(info.value)
    assert message.startswith(f"{folder}/model.pt: weights do not fit a 'field_autoencoder': "
                              f"encoder.stem.weight has shape (8, 1, 3, 3), model expects "
                              f"(16, 1, 3, 3) (and ")
    assert "\n" not in message


def test_error_weights_file_unreadable(tmp_path):
    folder = saved(tmp_path)
    (folder / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    assert str(info.value).startswith(f"{folder}/model.pt: cannot load weights: ")
    assert "\n" not in str(info.value)


def test_error_weights_file_not_a_state_dict(tmp_path):
    folder = saved(tmp_path)
    torch.save(torch.zeros(3), folder / "model.pt")
    with pytest.raises(FieldModelError) as info:
        load_field_autoencoder(folder)
    assert str(info.value) == (f"{folder}/model.pt: cannot load weights: holds a Tensor, "
                               f"not a state dict")


def test_channels_come_from_the_data_and_old_checkpoints_keep_nearest(tmp_path):
    """A stage leaves `channels` to the data; building without it is one clear error. A
    checkpoint from before `upsample` existed loads with the nearest upsampling it trained with."""
    from latentsci.fields.networks.registry import load_model, save_model

    with pytest.raises(ValueError, match="channels is not set"):
        build_field_autoencoder(FieldAutoencoderConfig(width=8, levels=2))
    assert FieldAutoencoderConfig(channels=1).upsample == "bilinear"
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2,
                                                           upsample="nearest"))
    folder = save_model(tmp_path / "old", model, {"kind": AUTOENCODER_KIND})
    meta = json.loads((folder / "meta.json").read_text())
    del meta["config"]["upsample"]  # as written before the option existed
    (folder / "meta.json").write_text(json.dumps(meta))
    loaded, _ = load_model(folder)
    assert loaded.config.upsample == "nearest"

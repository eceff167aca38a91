"""The differentiable property predictor: gradients reach z, fits recover a known map, saves load."""

import numpy as np
import pytest
import torch

from latentsci.errors import InputDataError
from latentsci.latent.predictor import (
    PredictorConfig,
    PredictorFileError,
    fit_predictor,
    load_predictor,
    save_predictor,
    store_training_data,
)
from latentsci.store import LatentStore

D = 6
WEIGHTS = np.array([1.5, -2.0, 0.5, 0.0, 1.0, 0.0])


def _data(n=1500, seed=0):
    """z and two properties: a linear one and a smooth nonlinear one (known truth)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, D)).astype(np.float32)
    linear = z @ WEIGHTS + 3.0
    bumpy = np.sin(z[:, 0]) * 10 + z[:, 1] ** 2
    return z, np.stack([linear, bumpy], 1)


CONFIG = PredictorConfig(properties=["linear", "bumpy"], hidden=64, epochs=60, seed=0)


@pytest.fixture(scope="module")
def fitted():
    z, y = _data()
    return fit_predictor(z, y, CONFIG)


def test_fit_recovers_a_known_map_on_held_out_rows(fitted):
    model, report = fitted
    assert report.valid_rows == 150 and report.train_rows == 1350
    assert report.r2["linear"] > 0.98 and report.r2["bumpy"] > 0.9
    z, y = _data(300, seed=1)  # fresh rows
    pred = model.predict_numpy(z)
    assert np.sqrt(np.mean((pred[:, 0] - y[:, 0]) ** 2)) < 0.15 * y[:, 0].std()


def test_gradients_reach_z_and_match_finite_differences(fitted):
    model, _ = fitted
    z = torch.tensor(_data(4, seed=2)[0], dtype=torch.float64, requires_grad=True)
    model64 = model.double()
    try:
        model64.predict(z)[:, 1].sum().backward()
        eps, numeric = 1e-6, torch.zeros_like(z)
        with torch.no_grad():
            for d in range(D):
                step = torch.zeros_like(z)
                step[:, d] = eps
                numeric[:, d] = (model64.predict(z + step)[:, 1]
                                 - model64.predict(z - step)[:, 1]) / (2 * eps)
        torch.testing.assert_close(z.grad, numeric, rtol=1e-5, atol=1e-7)
        # the linear property's gradient is close to the true weights
        z.grad = None
        model64.predict(z)[:, 0].sum().backward()
        assert np.abs(z.grad.numpy() - WEIGHTS).max() < 0.3
    finally:
        model.float()


def test_gradient_ascent_on_z_raises_the_true_property(fitted):
    model, _ = fitted
    z = torch.zeros(8, D, requires_grad=True)
    optimizer = torch.optim.SGD([z], lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        (-model.predict(z)[:, 0].sum()).backward()
        optimizer.step()
    truth = z.detach().numpy() @ WEIGHTS + 3.0
    assert (truth > 3.0 + 1.0).all()


def test_unknown_targets_are_left_out():
    z, truth = _data(800)
    y = truth.copy()
    y[::2, 1] = np.nan  # half of one property unlabelled
    model, report = fit_predictor(z, y, CONFIG)
    assert np.isfinite(model.predict_numpy(z)).all() and report.r2["bumpy"] > 0.7
    # read as zeros instead, the unlabelled half would drag the fit far from the truth
    zeroed, _ = fit_predictor(z, np.nan_to_num(y), CONFIG)

    def r2(m):
        residual = ((m.predict_numpy(z)[:, 1] - truth[:, 1]) ** 2).sum()
        return 1 - residual / ((truth[:, 1] - truth[:, 1].mean()) ** 2).sum()

    assert r2(model) > 0.8 and r2(model) > r2(zeroed) + 0.15
    with pytest.raises(InputDataError, match="do not match 2 properties"):
        fit_predictor(z, y[:, :1], CONFIG)
    with pytest.raises(InputDataError, match="usable rows"):
        fit_predictor(z[:3] * np.nan, y[:3], CONFIG)


def test_save_and_load_weights_only(fitted, tmp_path):
    model, _ = fitted
    folder = save_predictor(tmp_path / "p", model)
    loaded = load_predictor(folder)
    z = _data(20, seed=3)[0]
    np.testing.assert_array_equal(loaded.predict_numpy(z), model.predict_numpy(z))
    assert loaded.config == model.config
    (tmp_path / "x").mkdir()
    with pytest.raises(PredictorFileError) as err:
        load_predictor(tmp_path / "x")
    assert str(err.value).count("\n") == 0 and "model.pt and meta.json" in str(err.value)


def test_training_data_from_a_store(tmp_path):
    z, y = _data(64)
    store = LatentStore.create(tmp_path / "s.zarr", 64, D,
                               {"linear": "float64", "split": "str"}, rows_per_shard=64)
    store.write_rows(0, z, np.array([f"r{i}" for i in range(64)], dtype=object),
                     {"linear": y[:, 0], "split": np.array(["train", "test"] * 32, dtype=object)})
    store.finalize()
    zs, ys = store_training_data(tmp_path / "s.zarr", ["linear"])
    np.testing.assert_allclose(zs, z[::2]) and np.testing.assert_allclose(ys[:, 0], y[::2, 0])
    with pytest.raises(InputDataError, match="no column 'qed'"):
        store_training_data(tmp_path / "s.zarr", ["qed"])


def test_a_vae_property_head_seeds_the_predictor():
    from latentsci.molecules.vae.property_head import PropertyHead, as_predictor

    head = PropertyHead(D, 2)
    head.fit_scale(np.array([[0.0, 1.0], [2.0, 5.0]]))
    predictor = as_predictor(head, ["logp", "qed"])
    z = torch.randn(5, D)
    torch.testing.assert_close(predictor.predict(z), head.predict(z))

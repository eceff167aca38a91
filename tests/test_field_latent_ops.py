"""The domain-free stages on a fields latent store: OOD against a shifted simulation's store,
probes of a physical parameter by trajectory-grouped splits, clusters and MIG/DCI."""

import json

import numpy as np
import pandas as pd
import pytest

from latentsci.fields.data.writer import create_field_store, write_block
from latentsci.fields.encode import encode_fields
from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
from latentsci.fields.networks.checkpoint import AUTOENCODER_CODEC, AUTOENCODER_KIND
from latentsci.fields.networks.registry import save_model
from latentsci.latent.stages.ood import OOD_FIT, OODFitConfig
from latentsci.latent.stages.probe import PROBE, ProbeConfig
from latentsci.latent.stages.structure import STRUCTURE, StructureConfig
from latentsci.pipeline.stage import StageContext, StageRecord

X = np.linspace(0, 2 * np.pi, 16, endpoint=False)


def _frames(waves: list[float], times: int = 6) -> np.ndarray:
    """One trajectory per wave number: a drifting pattern whose scale is set by it."""
    return np.stack([[[np.sin(X[:, None] * a + 0.3 * t) * np.cos(X[None, :] * a)]
                      for t in range(times)] for a in waves]).astype("float32")


def _field_store(path, waves: list[float], viscosity: list[float]):
    """A field store of those trajectories with a viscosity parameter each."""
    data = _frames(waves)
    create_field_store(path, len(waves), np.arange(6.0), ["w"], (16, 16), ["viscosity"],
                       len(waves))
    write_block(path, 0, data, np.ones(len(waves), bool), {"viscosity": np.array(viscosity)})
    return data


@pytest.fixture(scope="module")
def stores(tmp_path_factory, ray_cluster):
    """18 trajectories at three 'viscosities' (wave numbers 1, 2, 3), the last 6 held out; a
    shifted store at wave number 5; both encoded by one (untrained) autoencoder."""
    tmp = tmp_path_factory.mktemp("fieldops")
    waves = [1.0, 2.0, 3.0] * 6
    data = _field_store(tmp / "f.zarr", [w + 0.05 * i for i, w in enumerate(waves)],
                        [1e-3 * w for w in waves])
    _field_store(tmp / "shift.zarr", [5.0 + 0.05 * i for i in range(4)], [5e-3] * 4)
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2))
    model.fit_scale(data.reshape(-1, 1, 16, 16))
    codec = save_model(tmp / "ae", model, {"kind": AUTOENCODER_KIND, "codec": AUTOENCODER_CODEC,
                                           "frame_shape": [1, 16, 16]})
    fit = encode_fields(str(tmp / "f.zarr"), str(codec), tmp / "z.zarr", 12, 6, {}, False)
    shifted = encode_fields(str(tmp / "shift.zarr"), str(codec), tmp / "zs.zarr", 4, 4, {},
                            False)
    return tmp, fit.path, shifted.path, codec


def _context(tmp, name: str, **records) -> StageContext:
    """A stage's context with the needed stages' records (name -> outputs)."""
    out = tmp / name
    out.mkdir(exist_ok=True)
    return StageContext(name, out, {k: StageRecord(k, k, k, v) for k, v in records.items()})


def test_ood_fit_reports_a_shifted_simulation_store(stores):
    tmp, fit, shifted, codec = stores
    config = OODFitConfig(detectors=["mahalanobis", "knn", "reconstruction"], k=3,
                          calibration_rows=12, inside_split="test", report_by="trajectory")
    ctx = _context(tmp, "ood", encode={"store": str(fit)}, shift={"store": str(shifted)},
                   ae={"codec": str(codec)})
    result = OOD_FIT.run(config, ctx)
    table = pd.read_csv(result.outputs["report"])
    report = table[table["set"] == "shift"].set_index("detector")
    assert set(report.index) == {"mahalanobis", "knn", "reconstruction", "combined"}
    assert report.loc["combined", "outside"] == 24
    assert report.loc["combined", "inside"] == 36  # the 6 held-out trajectories' frames
    assert result.metrics["auroc_shift"] == report.loc["combined", "auroc"]
    # each shifted trajectory apart too (6 frames each)
    apart = table[table["set"].str.startswith("shift.trajectory_")]
    assert sorted(apart["set"].unique()) == [f"shift.trajectory_{t}" for t in range(4)]
    assert (apart["outside"] == 6).all() and "auroc_shift.trajectory_0" in result.metrics
    assert (tmp / "ood" / "ood_scores.png").is_file()


def test_calibration_can_hold_out_whole_trajectories(stores):
    from latentsci.latent.codec import load_codec
    from latentsci.latent.ood import OODConfig
    from latentsci.latent.ood_fit import fit_detector
    from latentsci.store import LatentStore

    _, fit, _, codec = stores
    store = LatentStore.open(fit)
    config = OODConfig(detectors=["mahalanobis", "knn"], k=3, calibration_rows=12,
                       calibration_groups="trajectory")
    detector = fit_detector(store, config, load_codec(codec))
    trajectory = store.column("trajectory")
    train = np.flatnonzero(store.column("split") == "train")
    fitted = set(trajectory[detector.fit_rows])
    held = set(trajectory[train]) - fitted
    assert len(held) == 2  # two whole trajectories of 6 frames reach the 12 rows asked for
    assert len(detector.fit_rows) == len(train) - 12
    with pytest.raises(Exception, match="calibration_groups 'split' has 1 group"):
        fit_detector(store, config.model_copy(update={"calibration_groups": "split"}),
                     load_codec(codec))


def test_probe_reads_the_viscosity_by_trajectory_groups(stores):
    tmp, fit, _, _ = stores
    config = ProbeConfig(columns={"viscosity": "regression"}, group_column="trajectory",
                         splits=3)
    result = PROBE.run(config, _context(tmp, "probe", encode={"store": str(fit)}))
    summary = pd.read_csv(result.outputs["probe"])
    assert set(summary["features"]) == {"none", "latent"}
    assert set(summary["model"]) == {"mean", "ridge", "mlp"}
    latent = summary.set_index(["features", "model"])["mean"]
    assert latent["latent", "mlp"] < latent["none", "mean"]  # standardised targets: nu ~ 1e-3
    scores = pd.read_csv(result.outputs["scores"])
    assert (scores["test"] % 6 == 0).all()  # whole trajectories (6 frames each) per side
    with pytest.raises(Exception, match="no column 'forcing'"):
        PROBE.run(ProbeConfig(columns={"forcing": "regression"}),
                  _context(tmp, "probe2", encode={"store": str(fit)}))


def test_structure_clusters_by_viscosity_and_scores_the_factor(stores):
    tmp, fit, _, _ = stores
    config = StructureConfig(classes="viscosity", factors=["viscosity"])
    result = STRUCTURE.run(config, _context(tmp, "structure", encode={"store": str(fit)}))
    saved = json.loads(open(result.outputs["structure"]).read())
    assert saved["latent_classes"] == 3 and -1 <= saved["latent_ari"] <= 1
    assert 0 <= saved["mig_viscosity"] <= 1 and np.isnan(saved["dci_disentanglement"])
    with pytest.raises(Exception, match="needs a store of items"):
        STRUCTURE.run(StructureConfig(classes="groups"),
                      _context(tmp, "structure2", encode={"store": str(fit)}))


def test_field_detectors_compare_latent_summaries_and_keep_that_when_saved(stores, tmp_path):
    from latentsci.latent.codec import load_codec
    from latentsci.latent.ood import OODConfig
    from latentsci.latent.ood_files import load_detector, save_detector
    from latentsci.latent.ood_fit import fit_detector, gate
    from latentsci.store import LatentStore

    _, fit, shifted, codec_path = stores
    store, codec = LatentStore.open(fit), load_codec(codec_path)
    config = OODConfig(detectors=["mahalanobis", "knn"], k=3, calibration_rows=12,
                       calibration_groups="trajectory")
    detector = fit_detector(store, config, codec)
    assert detector.space == "summary" and len(detector.mean) != store.dim
    raw = fit_detector(store, config.model_copy(update={"space": "latent"}), codec)
    assert raw.space == "latent" and len(raw.mean) == store.dim
    loaded = load_detector(save_detector(detector, tmp_path / "det"), codec, store)
    z = LatentStore.open(shifted).vectors(np.arange(8))
    np.testing.assert_allclose(gate(loaded, store, codec, z=z).score,
                               gate(detector, store, codec, z=z).score)
    with pytest.raises(Exception, match="needs the codec it was fitted with"):
        gate(loaded, store, None, z=z)


def test_stored_frames_are_the_frames_the_rows_were_encoded_from(stores):
    from latentsci.fields.domain import stored_frames
    from latentsci.latent.codec import load_codec
    from latentsci.store import LatentStore

    tmp, fit, _, codec = stores
    store = LatentStore.open(fit)
    rows = np.array([0, 7, 40, 107])
    frames = stored_frames(store, rows)
    expected = _frames([w + 0.05 * i for i, w in enumerate([1.0, 2.0, 3.0] * 6)])
    np.testing.assert_array_equal(frames, expected.reshape(-1, 1, 16, 16)[rows])
    np.testing.assert_allclose(load_codec(codec).encode(frames).z, store.vectors(rows),
                               rtol=1e-4, atol=1e-5)

"""Interpolation at scale on a real store: paths decoded across Ray tasks through the store's
codec (the shipped molecule model), scored, written by the CLI; bad pairs refused with reasons."""

import subprocess

import numpy as np
import pandas as pd
import pytest

from latentsci.errors import InputDataError, StoreError
from latentsci.latent.interpolation import interpolate_store, summary
from latentsci.latent.pairs import candidate_rows, neighbour_pairs, pairs_from_file, random_pairs
from latentsci.molecules.tasks import encode_table
from latentsci.molecules.vae.shipped import shipped_model_dir
from latentsci.store import LatentStore

from conftest import SMILES, cli_env, latentsci_cmd


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, ray_cluster):
    """Twenty molecules and one the model cannot read, encoded by the shipped model."""
    smiles = SMILES[:20] + ["[U+6]"]
    table = pd.DataFrame({"id": [f"m{i}" for i in range(len(smiles))], "smiles": smiles})
    path = tmp_path_factory.mktemp("interp") / "latents.zarr"
    encode_table(table, str(shipped_model_dir()), path, {"smiles": "str"}, {}, 8, False)
    return path


def test_paths_are_decoded_and_scored_across_tasks(store_path):
    store = LatentStore.open(store_path)
    rows = candidate_rows(store)
    assert len(rows) == 20  # the unreadable molecule's NaN row is never an end
    pairs = random_pairs(rows, 5, seed=1)
    result = interpolate_store(store, pairs, steps=4, method="slerp", per_task=2)
    assert len(result.points) == 20 and len(result.paths) == 5
    assert sorted(result.points["path"].unique()) == [0, 1, 2, 3, 4]
    assert result.points["item"].map(lambda s: isinstance(s, str) and len(s) > 0).all()
    paths = result.paths
    assert (paths["start_id"] != paths["end_id"]).all()
    assert paths["valid"].eq(1.0).all()  # SELFIES decodes are always molecules
    assert paths["smoothness"].between(0, 1).all() and paths["distinct"].between(1, 4).all()
    assert paths["start_recovered"].isin([0.0, 1.0]).all()
    assert {"tv_qed", "tv_logp", "tv_sa"} <= set(paths.columns)
    assert set(summary(result)) >= {"mean_smoothness", "mean_start_recovered"}


def test_neighbour_pairs_stay_inside_the_selection(store_path):
    store = LatentStore.open(store_path)
    rows = candidate_rows(store, where="id != 'm0'", limit=10)
    pairs = neighbour_pairs(store, rows, 2)
    assert len(pairs) == 10 and set(pairs.end) <= set(rows) and (pairs.start != pairs.end).all()


def test_a_pair_file_with_bad_lines_keeps_the_good_ones(store_path, tmp_path):
    store = LatentStore.open(store_path)
    path = tmp_path / "pairs.csv"
    path.write_text("start,end\nm1,m2\nm3,nope\nm4\nm5,m20\nm6,m7\n")
    pairs = pairs_from_file(path, store)
    assert list(zip(pairs.start, pairs.end)) == [(1, 2), (6, 7)]
    assert pairs.rejects == [("line 3", "no row with id 'nope'"),
                             ("line 4", "needs a start and an end id"),
                             ("line 5", "an end has no latent (the codec rejected it)")]
    path.write_text("from,to\nm1,m2\n")
    with pytest.raises(InputDataError, match="'start' and 'end' id columns .* or 'chain' and 'id'"):
        pairs_from_file(path, store)
    with pytest.raises(StoreError, match="matches no row"):
        candidate_rows(store, where="id == 'none'")


def test_a_chain_file_makes_one_path_per_leg_and_refuses_broken_chains(store_path, tmp_path):
    store = LatentStore.open(store_path)
    path = tmp_path / "chains.csv"
    path.write_text("chain,id\na,m1\na,m2\nb,m3\na,m4\nb,nope\nc,m5\nd,m6\nd,m20\n")
    pairs = pairs_from_file(path, store)
    assert list(zip(pairs.start, pairs.end)) == [(1, 2), (2, 4)]  # a: m1 -> m2 -> m4
    assert list(pairs.chain) == ["a", "a"] and list(pairs.leg) == [0, 1]
    assert pairs.rejects == [("chain 'b'", "no row with id 'nope'"),
                             ("chain 'c'", "needs at least 2 anchors"),
                             ("chain 'd'", "an anchor has no latent (the codec rejected it)")]
    result = interpolate_store(store, pairs, steps=3, method="lerp", per_task=1)
    assert list(result.paths["chain"]) == ["a", "a"] and list(result.paths["leg"]) == [0, 1]
    assert "mean_smoothness" in summary(result)  # chain labels are not averaged
    path.write_text("chain,id\nb,nope\n")
    with pytest.raises(InputDataError, match="no usable chain"):
        pairs_from_file(path, store)


def test_cli_writes_points_paths_and_rejects(store_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("start,end\nm1,m2\nm3,nope\n")
    out = tmp_path / "paths.parquet"
    done = subprocess.run(latentsci_cmd("interpolate", "--store", str(store_path), "--pairs",
                                        str(pairs), "--steps", "3", "--method", "norm", "--out",
                                        str(out)), capture_output=True, text=True, env=cli_env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote 3 points of 1 paths to {out} (1 pairs refused")
    assert len(pd.read_parquet(out)) == 3
    assert len(pd.read_parquet(tmp_path / "paths.paths.parquet")) == 1
    assert pd.read_csv(tmp_path / "paths.rejects.csv")["reason"].tolist() == [
        "no row with id 'nope'"]
    bad = subprocess.run(latentsci_cmd("interpolate", "--store", str(store_path), "--random",
                                       "3", "--where", "id == 'zzz'", "--out", str(out)),
                         capture_output=True, text=True, env=cli_env(), timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("--where \"id == 'zzz'\" matches no row")
    assert np.isfinite(pd.read_parquet(out)["t"]).all()


def test_field_paths_decode_to_frames_in_zarr(ray_cluster, tmp_path):
    """The same operation on a field store: decoded frames go to Zarr, scored by the fields'
    pattern correlation."""
    import zarr

    from latentsci.fields.data.writer import create_field_store, write_block
    from latentsci.fields.encode import encode_fields
    from latentsci.fields.networks.autoencoder import FieldAutoencoderConfig, build_field_autoencoder
    from latentsci.fields.networks.checkpoint import AUTOENCODER_CODEC, AUTOENCODER_KIND
    from latentsci.fields.networks.registry import save_model
    from latentsci.latent.interpolation import write_interpolation

    x = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    data = np.stack([[[np.sin(x[:, None] * a + t) * np.cos(x[None, :] * a)] for t in range(3)]
                     for a in (1, 2, 3)]).astype("float32")
    create_field_store(tmp_path / "f.zarr", 3, np.arange(3.0), ["w"], (16, 16), ["nu"], 3)
    write_block(tmp_path / "f.zarr", 0, data, np.ones(3, bool), {"nu": np.ones(3)})
    model = build_field_autoencoder(FieldAutoencoderConfig(channels=1, width=8, levels=2))
    model.fit_scale(data.reshape(-1, 1, 16, 16))
    folder = save_model(tmp_path / "ae", model, {"kind": AUTOENCODER_KIND,
                                                 "codec": AUTOENCODER_CODEC,
                                                 "frame_shape": [1, 16, 16]})
    store = encode_fields(str(tmp_path / "f.zarr"), str(folder), tmp_path / "z.zarr", 2, 3, {},
                          False)
    result = interpolate_store(store, random_pairs(candidate_rows(store), 4), steps=3)
    assert result.frames.shape == (4, 3, 1, 16, 16) and "item" not in result.points
    assert result.paths["smoothness"].between(-1, 1).all()
    assert np.isnan(result.paths["distinct"]).all()  # frames are not counted as distinct items
    # the fields' own metrics: VRMSE to each end and the training frames' range
    assert {"vrmse_mid_start", "vrmse_mid_end", "vrmse_step", "in_range"} <= set(result.paths)
    assert result.paths["in_range"].between(0, 1).all()
    written = write_interpolation(result, tmp_path / "paths.zarr")
    assert zarr.open_group(str(written["frames"]))["frames"].shape == (4, 3, 1, 16, 16)
    assert len(pd.read_parquet(written["points"])) == 12
    with pytest.raises(Exception, match="the decoded items are frames: expected a .zarr name"):
        write_interpolation(result, tmp_path / "paths.parquet")


def test_an_end_is_recovered_when_it_decodes_to_the_same_molecule_written_otherwise():
    """Decodes come back as SELFIES-derived SMILES, stores hold the ingest's canonical ones."""
    from latentsci.latent.interpolation import path_metrics
    from latentsci.molecules.domain import MOLECULE_PIECES

    items = ["OCC", "CCCO", "C1=CC=CC=C1"]
    props = MOLECULE_PIECES.properties(items)
    metrics = path_metrics(items, ("CCO", "c1ccccc1O"), MOLECULE_PIECES, props)
    assert (metrics["start_recovered"], metrics["end_recovered"]) == (1.0, 0.0)
    assert metrics["distinct"] == 3 and metrics["valid"] == 1.0


def test_field_path_metrics_see_a_blend_and_a_frame_out_of_range():
    from latentsci.fields.domain import frame_path_metrics

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, (2, 2, 8, 8))
    path = [(1 - t) * a + t * b for t in np.linspace(0, 1, 5)]
    metrics = frame_path_metrics(path, {"low": [0.0, 0.0], "high": [1.0, 1.0]})
    assert metrics["vrmse_monotonic"] == pytest.approx(1.0) and metrics["in_range"] == 1.0
    assert metrics["vrmse_mid_start"] == pytest.approx(metrics["vrmse_mid_end"], rel=0.3)
    path[2] = path[2] + np.where(np.arange(8) == 3, 2.0, 0.0)  # one column far above the range
    assert frame_path_metrics(path, {"low": [0.0, 0.0], "high": [1.0, 1.0]})["in_range"] == 0.8
    assert "in_range" not in frame_path_metrics(path, {})  # no training range known


def test_a_model_that_did_not_write_the_store_is_refused_before_any_task(store_path, tmp_path):
    import shutil

    import torch

    from latentsci.latent.codec import CodecError

    store = LatentStore.open(store_path)
    copy = tmp_path / "retrained"  # the shipped model with one weight changed
    shutil.copytree(shipped_model_dir(), copy)
    state = torch.load(copy / "model.pt", weights_only=True)
    first = next(iter(state))
    state[first] = state[first] + 1.0
    torch.save(state, copy / "model.pt")
    pairs = random_pairs(candidate_rows(store), 2)
    with pytest.raises(CodecError, match="not the codec that wrote .* weights differ"):
        interpolate_store(store, pairs, 3, model=str(copy))
    with pytest.raises(StoreError, match="--where \"id == 'nope'\" matches no row"):
        candidate_rows(store, "id == 'nope'")

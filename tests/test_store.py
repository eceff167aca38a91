"""The latent store: concurrent Ray writers, completeness, and queries checked against numpy."""

import numpy as np
import pytest
import ray

from latentsci.errors import StoreError
from latentsci.store import LatentStore, Predicate, query, top_k

N, D, SHARD = 1000, 16, 64  # 16 blocks: 15 whole shards and a short last one


def _data(seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, D)).astype(np.float32)
    props = {"qed": rng.uniform(size=N), "sa": rng.uniform(1, 10, size=N),
             "split": np.array(["train", "valid"] * (N // 2), dtype=object)}
    ids = np.array([f"m{i}" for i in range(N)], dtype=object)
    return z, ids, props


def _create(path):
    return LatentStore.create(path, N, D, {"qed": "float64", "sa": "float64", "split": "str"},
                              rows_per_shard=SHARD, rows_per_chunk=16, with_std=True,
                              attrs={"model": "test", "mlflow_run_id": "r1", "config_hash": "abc"})


@ray.remote
def _write_block(path, start, stop, z, ids, props):
    store = LatentStore.open(path, allow_incomplete=True, writable=True)
    store.write_rows(start, z[start:stop], ids[start:stop],
                     {k: v[start:stop] for k, v in props.items()}, z_std=np.abs(z[start:stop]))
    return start


@pytest.fixture(scope="module")
def filled(tmp_path_factory, ray_cluster):
    """A store written by one Ray task per block, all running at once."""
    path = str(tmp_path_factory.mktemp("store") / "s.zarr")
    store = _create(path)
    z, ids, props = _data()
    refs = [ray.put(x) for x in (z, ids, props)]
    blocks = [store.grid.bounds(b) for b in range(store.grid.n_blocks)]
    assert len(blocks) >= 8
    done = ray.get([_write_block.remote(path, a, b, *refs) for a, b in reversed(blocks)])
    assert sorted(done) == [a for a, _ in blocks]
    store.finalize()
    return LatentStore.open(path), z, ids, props


def test_every_row_written_by_concurrent_tasks(filled):
    store, z, ids, props = filled
    assert store.complete and len(store) == N
    np.testing.assert_array_equal(store.vectors(slice(None)), z)
    np.testing.assert_array_equal(store.group["z_std"][:], np.abs(z))
    assert store.ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(store.column("qed"), props["qed"])
    assert store.column("split").tolist() == props["split"].tolist()
    assert store.attrs["model"] == "test" and store.attrs["schema_version"] == 2


def test_interrupted_write_stays_incomplete(tmp_path):
    store = _create(tmp_path / "s.zarr")
    z, ids, props = _data()
    for block in range(store.grid.n_blocks - 1):  # the writer of the last block "died"
        a, b = store.grid.bounds(block)
        store.write_rows(a, z[a:b], ids[a:b], {k: v[a:b] for k, v in props.items()})
    with pytest.raises(StoreError) as err:
        store.finalize()
    assert str(err.value) == (f"{tmp_path / 's.zarr'}: 1 blocks never written (first: rows "
                              "(960, 1000)); store left incomplete")
    with pytest.raises(StoreError) as err:
        LatentStore.open(tmp_path / "s.zarr")
    assert str(err.value) == (f"{tmp_path / 's.zarr'}: store is incomplete (its writer did not "
                              "finish); pass allow_incomplete=True to read it anyway")
    assert LatentStore.open(tmp_path / "s.zarr", allow_incomplete=True).missing_blocks() == [15]


def test_writes_must_be_whole_shards(tmp_path):
    store = _create(tmp_path / "s.zarr")
    z, ids, props = _data()
    with pytest.raises(ValueError, match="not whole shards of 64 rows"):
        store.write_rows(10, z[10:74], ids[10:74], {k: v[10:74] for k, v in props.items()})
    with pytest.raises(StoreError, match=r"z has shape \(64, 3\), expected \(rows, 16\)"):
        store.write_rows(0, z[:64, :3], ids[:64], {k: v[:64] for k, v in props.items()})


def test_rows_by_ids_and_range(filled):
    store, z, ids, props = filled
    frame = query(store, ids=["m7", "m3", "m999"], with_z=True)
    assert frame["id"].tolist() == ["m7", "m3", "m999"]
    np.testing.assert_array_equal(np.stack(frame["z"]), z[[7, 3, 999]])
    np.testing.assert_array_equal(frame["qed"], props["qed"][[7, 3, 999]])
    assert store.table(slice(100, 105))["id"].tolist() == [f"m{i}" for i in range(100, 105)]
    with pytest.raises(StoreError, match="no row with id 'nope'"):
        store.rows_of(["nope"])


def test_filter_matches_numpy(filled):
    store, _, _, props = filled
    rows = store.where("qed > 0.8 and sa < 3 or split == 'valid' and not qed >= 0.1")
    expected = ((props["qed"] > 0.8) & (props["sa"] < 3)) | (
        (props["split"] == "valid") & ~(props["qed"] >= 0.1))
    np.testing.assert_array_equal(rows, np.flatnonzero(expected))
    np.testing.assert_array_equal(store.where("0.2 < qed <= 0.3"),
                                  np.flatnonzero((props["qed"] > 0.2) & (props["qed"] <= 0.3)))
    np.testing.assert_array_equal(store.where("split in ['valid']"), np.arange(1, N, 2))


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('x')", "Call is not allowed"),
    ("qed.real > 1", "Attribute is not allowed"),
    ("qed + 1 > 2", "BinOp is not allowed"),
    ("logp > 1", "unknown column 'logp' (columns: qed, sa)"),
    ("qed >", "not a valid expression"),
])
def test_filter_refuses_anything_but_comparisons(text, message):
    with pytest.raises(StoreError) as err:
        Predicate(text, ["qed", "sa"])
    assert str(err.value).startswith(f"filter {text!r}: {message}")


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_numpy(filled, metric):
    store, z, _, _ = filled
    queries = z[[5, 500]] + 0.01
    rows, dist = top_k(store, queries, k=7, metric=metric)
    if metric == "cosine":
        unit = z / np.linalg.norm(z, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        full = 1 - q @ unit.T
    else:
        full = np.linalg.norm(queries[:, None, :] - z[None], axis=2)
    expected = np.argsort(full, axis=1)[:, :7]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-5)


def test_knn_standardised_matches_numpy_on_the_transformed_rows(filled):
    store, z, _, _ = filled
    shift, scale = z.mean(axis=0), np.linspace(0.5, 2.0, z.shape[1]).astype(np.float32)
    queries = z[[3, 77]] * 1.5
    rows, dist = top_k(store, queries, k=5, metric="euclidean", standardise=(shift, scale))
    full = np.linalg.norm(((queries - shift) / scale)[:, None] - ((z - shift) / scale)[None], axis=2)
    expected = np.argsort(full, axis=1)[:, :5]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-5)
    with pytest.raises(StoreError, match="positive scale"):
        top_k(store, queries, k=5, standardise=(shift, -scale))


def test_knn_on_a_feature_map_matches_numpy_on_the_mapped_rows(filled):
    store, z, _, _ = filled
    features = lambda x: np.stack([np.abs(x).sum(1), (x ** 2).sum(1), x[:, 0]], axis=1)  # noqa: E731
    mapped = features(z)
    shift, scale = mapped.mean(axis=0), mapped.std(axis=0)
    queries = z[[5, 40, 900]] * 0.7
    rows, dist = top_k(store, queries, k=4, metric="euclidean", standardise=(shift, scale),
                       features=features)
    full = np.linalg.norm(((features(queries) - shift) / scale)[:, None]
                          - ((mapped - shift) / scale)[None], axis=2)
    expected = np.argsort(full, axis=1)[:, :4]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-4)
    with pytest.raises(StoreError, match="of 3 values each"):
        top_k(store, queries, k=4, standardise=(z.mean(0), z.std(0)), features=features)
    with pytest.raises(StoreError, match="features must map"):
        top_k(store, queries, k=4, features=lambda x: x.sum(1))


def test_knn_in_small_query_chunks_gives_the_same_answer(filled, monkeypatch):
    import latentsci.store.neighbours as neighbours

    store, z, _, _ = filled
    queries = z[::37] + 0.01
    whole = top_k(store, queries, k=6, metric="euclidean", exclude_rows=np.arange(len(z))[::37])
    monkeypatch.setattr(neighbours, "SCORES_PER_CHUNK", 300)  # a few queries per chunk
    chunked = top_k(store, queries, k=6, metric="euclidean", exclude_rows=np.arange(len(z))[::37])
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_allclose(whole[1], chunked[1])
    assert not (whole[0] == np.arange(len(z))[::37][:, None]).any()  # each query's own row left out
    empty = top_k(store, np.zeros((0, z.shape[1])), k=3)
    assert empty[0].shape == (0, 3)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_over_many_shards_with_a_mask_and_exclusions_matches_numpy(tmp_path, metric):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2000, 8)).astype(np.float32)
    store = LatentStore.create(tmp_path / "many.zarr", 2000, 8, rows_per_shard=128)
    store.write_rows(0, z, [f"r{i}" for i in range(2000)])
    store.finalize()
    allowed = rng.random(2000) < 0.5
    queries = rng.normal(size=(300, 8)).astype(np.float32)
    own = rng.choice(np.flatnonzero(allowed), size=300)  # each query leaves one allowed row out
    rows, dist = top_k(store, queries, k=5, metric=metric, allowed=allowed, exclude_rows=own)
    if metric == "cosine":
        unit = z / np.linalg.norm(z, axis=1, keepdims=True)
        full = 1 - (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    else:
        full = np.linalg.norm(queries[:, None, :] - z[None], axis=2)
    full[:, ~allowed] = np.inf
    full[np.arange(300), own] = np.inf
    expected = np.argsort(full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-5)


def test_knn_of_id_excludes_itself(filled):
    store, z, _, _ = filled
    frame = query(store, knn_of="m42", k=3, metric="euclidean")
    full = np.linalg.norm(z - z[42], axis=1)
    full[42] = np.inf
    assert frame["id"].tolist() == [f"m{i}" for i in np.argsort(full)[:3]]
    assert frame["distance"].is_monotonic_increasing


def test_dask_and_xarray_views(filled):
    store, z, _, props = filled
    arr = store.to_dask()
    assert arr.chunks[0][0] == SHARD
    np.testing.assert_allclose(arr.mean(axis=0).compute(), z.mean(axis=0), atol=1e-6)
    ds = store.to_xarray()
    assert ds["z"].shape == (N, D) and ds["ids"].values[3] == "m3"
    assert float(ds["qed"].where(ds["split"] == "train").mean()) == pytest.approx(
        props["qed"][::2].mean())


XARRAY_ONLY = """
import json, sys
import xarray as xr
ds = xr.open_zarr(sys.argv[1], consolidated=False)
json.dump({"dims": {k: int(v) for k, v in ds.sizes.items()}, "coords": list(ds.coords),
           "vars": {k: list(v.dims) for k, v in ds.data_vars.items()},
           "id7": str(ds["ids"].values[7]), "z7": ds["z"].values[7].tolist(),
           "qed_train": float(ds["qed"].where(ds["split"] == "train").mean()),
           "ours": sorted(m for m in sys.modules if m.startswith("latentsci"))}, sys.stdout)
"""


def test_plain_xarray_opens_a_store_as_the_dataset_to_xarray_gives(filled):
    import json
    import subprocess
    import sys

    import xarray as xr

    store, z, _, props = filled
    # an analyst's notebook: only xarray and zarr imported, no latentsci
    out = subprocess.run([sys.executable, "-c", XARRAY_ONLY, str(store.path)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    seen = json.loads(out)
    assert seen["dims"] == {"row": N, "latent": D} and seen["coords"] == ["ids"]
    assert seen["vars"] == {"z": ["row", "latent"], "z_std": ["row", "latent"], "qed": ["row"],
                            "sa": ["row"], "split": ["row"]}
    assert seen["id7"] == "m7" and seen["z7"] == z[7].tolist() and seen["ours"] == []
    assert seen["qed_train"] == pytest.approx(props["qed"][::2].mean())
    xr.testing.assert_identical(xr.open_zarr(store.path, consolidated=False), store.to_xarray())


def test_a_store_written_before_dimension_names_stays_readable():
    from pathlib import Path

    # written by the store code of 0c3e1c5: no dimension_names, written flags at the root
    old = LatentStore.open(Path(__file__).parent / "data" / "store_2026_11.zarr")
    assert old.missing_blocks() == [] and old.ids.tolist() == [f"m{i}" for i in range(6)]
    np.testing.assert_array_equal(old.vectors(slice(None)),
                                  np.arange(18, dtype=np.float32).reshape(6, 3) / 10)
    ds = old.to_xarray()
    assert dict(ds.sizes) == {"row": 6, "latent": 3} and ds["ids"].values[5] == "m5"
    assert old.attrs["schema_version"] == 1 and "_written" in old.group
    assert old.table(old.where("split == 'valid'"))["qed"].tolist() == pytest.approx([0.2, 0.6, 1.0])


def test_a_store_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    store = LatentStore.create(tmp_path / "s.zarr", 2, 2, rows_per_shard=1024)
    store.group.attrs["schema_version"] = 99
    with pytest.raises(StoreError, match=r"store schema version 99 is newer than this latentsci "
                                         r"reads \(2\): upgrade it"):
        LatentStore.open(tmp_path / "s.zarr", allow_incomplete=True)


def test_open_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreError) as err:
        LatentStore.open(tmp_path / "none.zarr")
    assert str(err.value) == f"{tmp_path / 'none.zarr'}: no latent store here"


def test_knn_of_id_in_a_store_smaller_than_k(tmp_path):
    store = LatentStore.create(tmp_path / "s.zarr", 3, 2, rows_per_shard=1024)
    store.write_rows(0, [[0, 0], [0, 0], [3, 4]], ["a", "b", "c"])
    store.finalize()
    frame = query(LatentStore.open(tmp_path / "s.zarr"), knn_of="a", k=10, metric="euclidean")
    assert frame["id"].tolist() == ["b", "c"] and frame["distance"].tolist() == [0.0, 5.0]


def test_any_shard_size_gets_whole_chunks(tmp_path):
    """A shard of 9 rows (3 trajectories x 3 frames per task) needs no chunk size from the user."""
    store = LatentStore.create(tmp_path / "s.zarr", 20, 4, rows_per_shard=9)
    assert 9 % store.group["z"].chunks[0] == 0

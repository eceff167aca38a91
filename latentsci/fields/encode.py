"""Encode every frame of a field store into a latent store, one Ray task per trajectory block.

Rows are trajectory-major (row = trajectory * times + time), ids read `traj-00012/t-0007`, and
the columns hold the trajectory, frame time, split and physical parameters (viscosity, F, k).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from latentsci.inference import in_chunks
from latentsci.store import LatentStore


@lru_cache(maxsize=2)
def loaded_autoencoder(model_dir: str):
    """One loaded autoencoder per worker process, reused across its tasks."""
    from latentsci.fields.networks.checkpoint import load_field_autoencoder

    torch.set_num_threads(1)
    return load_field_autoencoder(model_dir).eval()  # a folder, or its URL


def encode_block(block: tuple[int, int], fields_path: str, store_path: str, model_dir: str,
                 test_from: int) -> int:
    """Ray task: encode trajectories [start, stop) and write their rows into the store."""
    from latentsci.fields.data.sources import open_fields

    start, stop = block
    source = open_fields(fields_path)
    model = loaded_autoencoder(model_dir)
    frames = source.read(np.arange(start, stop))
    n, times = frames.shape[:2]
    with torch.no_grad():
        z = in_chunks(model.encode, torch.from_numpy(frames.reshape(-1, *frames.shape[2:])))
    z = z.reshape(n * times, -1).numpy()
    ids = np.array([f"traj-{t:05d}/t-{i:04d}" for t in range(start, stop) for i in range(times)])
    traj = np.repeat(np.arange(start, stop), times)
    columns = {"trajectory": traj, "time": np.tile(source.times, n),
               "split": np.where(traj >= test_from, "test", "train"),
               **{name: np.repeat(values[start:stop], times)
                  for name, values in source.parameters.items()}}
    store = LatentStore.open(store_path, allow_incomplete=True, writable=True)
    store.write_rows(start * times, z, ids, columns)
    return stop - start


def encode_fields(fields_path: str, model_dir: str, store_path: Path, test_from: int,
                  per_task: int, attrs: dict, progress: bool) -> LatentStore:
    """Encode all frames (blown-up trajectories stay NaN rows) into a new latent store."""
    from latentsci.fields.data.sources import open_fields
    from latentsci.latent import codec_record, load_codec
    from latentsci.runtime import map_batches

    source = open_fields(fields_path)
    n, times = source.shape[:2]
    shape = loaded_autoencoder(model_dir).latent_shape(tuple(source.shape[3:]))
    params = list(source.parameters)
    record = codec_record(load_codec(model_dir, frame_shape=source.shape[2:]))
    store = LatentStore.create(
        store_path, n * times, int(np.prod(shape)),
        {"trajectory": "int64", "time": "float64", "split": "str",
         **dict.fromkeys(params, "float64")},
        rows_per_shard=per_task * times,
        attrs={"model": "field_autoencoder", "model_path": model_dir, "codec": record,
               "fields": fields_path,
               "latent_shape": list(shape), "times_per_trajectory": times,
               "parameters": params, "test_from": test_from, **attrs})
    blocks = [(s, min(s + per_task, n)) for s in range(0, n, per_task)]
    map_batches(encode_block, blocks, desc="encode frames", progress=progress,
                weight=lambda b: b[1] - b[0], fields_path=fields_path,
                store_path=str(store_path), model_dir=model_dir, test_from=test_from)
    store.finalize()
    return LatentStore.open(store_path)

"""What field training reads: frames for the autoencoder, latent windows for the surrogate.

Each Ray Train worker calls these for its own trajectories, straight from the stores, so the
driver never ships the data set through the object store (on a cluster the stores are shared).
"""

from __future__ import annotations

import numpy as np
import torch


def frame_dataset(fields_path: str, trajectories: list[int]) -> tuple[torch.Tensor]:
    """All frames (n * time, channel, x, y) of the given trajectories."""
    from latentsci.fields.data.sources import open_fields

    source = open_fields(fields_path)
    if not trajectories:
        return (torch.zeros((0, *source.shape[2:])),)
    frames = source.read(np.asarray(trajectories))
    return (torch.from_numpy(frames.reshape(-1, *frames.shape[2:])),)


def latent_sequences(store_path: str, trajectories: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Latents (n, time, C, h, w) and parameters (n, P) of trajectories of an encoded store."""
    from latentsci.store import LatentStore

    store = LatentStore.open(store_path)
    times, shape = store.attrs["times_per_trajectory"], tuple(store.attrs["latent_shape"])
    params = store.attrs["parameters"]
    z = np.stack([store.vectors(slice(t * times, (t + 1) * times)) for t in trajectories]) \
        if trajectories else np.zeros((0, times, int(np.prod(shape))), dtype=np.float32)
    table = store.table(np.asarray([t * times for t in trajectories], dtype=np.int64)) \
        if trajectories else None
    p = (table[params].to_numpy(dtype=np.float32) if params and table is not None
         else np.zeros((len(trajectories), 0), dtype=np.float32))
    return z.reshape(len(trajectories), times, *shape), p


def window_dataset(store_path: str, trajectories: list[int],
                   history: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (last `history` latents, next latent, parameters) window of the trajectories."""
    z, p = latent_sequences(store_path, trajectories)
    n, steps = z.shape[:2]
    starts = range(steps - history)
    past = [z[:, s : s + history] for s in starts]
    nxt = [z[:, s + history] for s in starts]
    if not past or n == 0:
        empty = torch.zeros((0, history, *z.shape[2:]))
        return empty, empty[:, 0], torch.zeros((0, p.shape[1]))
    return (torch.from_numpy(np.concatenate(past)), torch.from_numpy(np.concatenate(nxt)),
            torch.from_numpy(np.tile(p, (len(past), 1))))


DATASETS = {"frames": frame_dataset, "windows": window_dataset}

"""Interpolation at scale: paths between pairs of a store's latents, decoded across Ray tasks
through the store's codec, each path scored with its domain's similarity and properties.

Per point: path, position, t, the decoded item (molecules: SMILES) and its properties. Per path:
its ends' ids, how many distinct items it visits, smoothness (mean similarity of consecutive
decodes), monotonicity (Spearman correlation of position with similarity to each end: +1 towards
the end, -1 away from the start), whether each end decodes back to its own item (where the store
holds items), validity (share of points whose properties are defined), the total variation of
each property along the path, with a detector each point's OOD score (`score_points`), and the
domain's own metrics (fields: VRMSE to each end, staying in
the training range; latentsci/fields/domain.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from latentsci.errors import ConfigError
from latentsci.latent.codec import (CodecError, codec_record, load_codec, store_codec,
                                    worker_codec)
from latentsci.latent.domain import DomainPieces, domain_pieces
from latentsci.latent.interpolate import Method, interpolate, positions
from latentsci.latent.pairs import Pairs


@dataclass
class Interpolation:
    """The decoded points (one row per path point) and one row of metrics per path; items that
    are arrays (field frames) come apart as `frames` (paths, steps, *frame) instead of a column."""

    points: pd.DataFrame
    paths: pd.DataFrame
    frames: np.ndarray | None = None
    kind: str = ""  # the codec kind the paths were decoded with


def _spearman(t: np.ndarray, values: np.ndarray) -> float:
    """Spearman correlation, NaN where a side is constant or undefined."""
    ok = np.isfinite(values)
    if ok.sum() < 3 or np.ptp(values[ok]) == 0:
        return float("nan")
    return float(spearmanr(t[ok], values[ok]).statistic)


def path_metrics(items: list, ends: tuple, pieces: DomainPieces,
                 props: dict[str, np.ndarray], context: dict | None = None) -> dict[str, float]:
    """The metrics of one decoded path (`ends`: the items the store holds for its ends, or None),
    with the domain's own (`pieces.path_metrics`, given `context`) after the shared ones."""
    t = positions(len(items))
    sim = pieces.similarity(items, [items[0], items[-1]])
    consecutive = np.diag(pieces.similarity(items[:-1], items[1:]))
    first = next(iter(props.values()), np.zeros(len(items)))
    hashable = all(isinstance(i, str) for i in items)  # molecules; frames are not compared
    out = {"distinct": float(len(set(items))) if hashable else float("nan"),
           "smoothness": float(np.nanmean(consecutive)) if len(consecutive) else float("nan"),
           "monotonic_to_end": _spearman(t, sim[:, 1]),
           "monotonic_from_start": _spearman(t, sim[:, 0]),
           "valid": float(np.isfinite(first).mean())}
    if ends[0] is not None:
        same = pieces.same or (lambda a, b: np.diag(pieces.similarity(a, b)) == 1.0)
        back = same([items[0], items[-1]], list(ends))
        out["start_recovered"], out["end_recovered"] = float(back[0]), float(back[1])
    for name, values in props.items():
        out[f"tv_{name}"] = float(np.nansum(np.abs(np.diff(values))))
    if pieces.path_metrics is not None:
        out.update(pieces.path_metrics(items, context or {}))
    return out


def _codec(store_path: str, model: str | None):
    """The codec paths decode through: the one given, else the one that wrote the store."""
    from latentsci.store import LatentStore

    return load_codec(model) if model else store_codec(LatentStore.open(store_path))


def interpolation_block(block: tuple[int, int], store_path: str, model: str | None,
                        start: np.ndarray, end: np.ndarray, steps: int, method: Method,
                        context: dict | None = None
                        ) -> tuple[list[dict], list[dict], list[np.ndarray]]:
    """A Ray task: paths start[a:b] -> end[a:b] decoded and scored (points, per-path rows, and
    the decoded frames of each path when items are arrays)."""
    from latentsci.store import LatentStore

    a, b = block
    store = LatentStore.open(store_path)
    codec = worker_codec(store, model)
    pieces = domain_pieces(codec)
    rows0, rows1 = start[a:b], end[a:b]
    paths = interpolate(store.vectors(rows0), store.vectors(rows1), steps, method)
    held = pieces.item_column and pieces.item_column in store.property_names
    column = store.column(pieces.item_column) if held else np.full(len(store), None)
    items0, items1 = column[rows0], column[rows1]
    ids = store.ids
    t = positions(steps)
    points, summaries, frames = [], [], []
    for n, path in enumerate(paths):
        items = list(codec.decode(path))
        props = pieces.properties(items)
        summaries.append({"path": a + n, "start_id": ids[rows0[n]], "end_id": ids[rows1[n]],
                          **path_metrics(items, (items0[n], items1[n]), pieces, props, context)})
        textual = all(isinstance(i, str) for i in items)
        if not textual:
            frames.append(np.stack(items))
        for i, item in enumerate(items):
            points.append({"path": a + n, "position": i, "t": float(t[i]),
                           **({"item": item} if textual else {}),
                           **{k: float(v[i]) for k, v in props.items()}})
    return points, summaries, frames


def interpolate_store(store, pairs: Pairs, steps: int, method: Method = "slerp",
                      model: str | None = None, per_task: int = 64,
                      progress: bool = False) -> Interpolation:
    """Decode and score every pair's path on Ray (one task per `per_task` pairs); the codec is
    checked against the store here, before any task starts."""
    from latentsci.latent.codec import latent_dim
    from latentsci.runtime import map_batches

    codec = _codec(str(store.path), model)
    if latent_dim(codec) != store.dim:
        raise CodecError(f"{model}: latents of {latent_dim(codec)} values, but {store.path} "
                         f"holds {store.dim} per row: not the codec of this store")
    wrote = (store.attrs.get("codec") or {}).get("weights_sha256")
    if model and wrote and codec_record(codec)["weights_sha256"] != wrote:
        raise CodecError(f"{model}: not the codec that wrote {store.path} (its weights differ "
                         "from the ones the store records)")

    pieces = domain_pieces(codec)
    context = pieces.path_context(store) if pieces.path_context is not None else {}
    blocks = [(a, min(a + per_task, len(pairs))) for a in range(0, len(pairs), per_task)]
    parts = map_batches(interpolation_block, blocks, desc="interpolate", progress=progress,
                        weight=lambda blk: blk[1] - blk[0], store_path=str(store.path),
                        model=model, start=pairs.start, end=pairs.end, steps=steps,
                        method=method, context=context)
    points = pd.DataFrame([p for part, _, _ in parts for p in part])
    paths = pd.DataFrame([s for _, part, _ in parts for s in part])
    if pairs.chain is not None and len(paths):  # legs of chains: say which, in order
        paths.insert(1, "chain", pairs.chain[paths["path"].to_numpy()])
        paths.insert(2, "leg", pairs.leg[paths["path"].to_numpy()])
    frames = [f for _, _, part in parts for f in part]
    return Interpolation(points, paths, np.stack(frames) if frames else None, codec.kind)


def score_points(result: Interpolation, store, pairs: Pairs, steps: int, method: Method,
                 detector_folder: Path, model: str | None = None) -> Interpolation:
    """Add each point's OOD score and verdict (the latent detectors, on the path's z rows) and
    per path the largest score and the share of points kept, with a saved detector checked
    against the codec the paths were decoded with."""
    from latentsci.latent.ood_files import load_detector
    from latentsci.latent.ood_fit import gate
    from latentsci.store import LatentStore

    codec = _codec(str(store.path), model)
    detector = load_detector(detector_folder, codec=codec, store=store)
    fitted_on = LatentStore.open(detector.store)
    z = interpolate(store.vectors(pairs.start), store.vectors(pairs.end), steps, method)
    verdict = gate(detector, fitted_on, codec, z=z.reshape(-1, z.shape[-1]))
    points = result.points.assign(ood_score=verdict.score, ood_keep=verdict.keep)
    per_path = points.groupby("path").agg(max_ood=("ood_score", "max"),
                                          kept=("ood_keep", "mean"))
    paths = result.paths.merge(per_path, left_on="path", right_index=True, how="left")
    return Interpolation(points, paths, result.frames, result.kind)


def summary(result: Interpolation) -> dict[str, float]:
    """Means over paths of every path metric (what a run logs and prints)."""
    labels = ["path", "chain", "leg", "start_id", "end_id"]
    numeric = result.paths.drop(columns=[c for c in labels if c in result.paths]).astype(float)
    return {f"mean_{k}": float(v) for k, v in numeric.mean(skipna=True).items()}


def write_interpolation(result: Interpolation, out: Path) -> dict[str, Path]:
    """Points to `out` (.parquet; for frames a Zarr group holding `frames` (path, position,
    *frame) beside the points table), per-path metrics to NAME.paths.parquet beside it."""
    out = Path(out)
    wants = ".zarr" if result.frames is not None else ".parquet"
    if out.suffix.lower() != wants:
        what = "frames" if result.frames is not None else "molecules"
        raise ConfigError(f"--out {out}: the decoded items are {what}: expected a {wants} name")
    written = {"points": out, "paths": out.with_name(out.stem + ".paths.parquet")}
    if result.frames is not None:
        import zarr

        group = zarr.open_group(str(out), mode="w")
        group.create_array("frames", data=result.frames.astype(np.float32),
                           chunks=(1, *result.frames.shape[1:]))
        written["points"] = out.with_name(out.stem + ".points.parquet")
        written["frames"] = out
    result.points.to_parquet(written["points"], index=False)
    result.paths.to_parquet(written["paths"], index=False)
    return written

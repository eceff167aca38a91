"""Which latents to interpolate between: pairs from a file of ids (or chains of anchors, each
leg a pair), random pairs, or each row with its K-th nearest neighbour, among the rows a filter
selects. Rows a codec could not encode (NaN z) are never an end; what was refused is counted and
said."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentsci.errors import InputDataError, StoreError


@dataclass
class Pairs:
    """Start and end rows of each path, and the pairs refused (where, why)."""

    start: np.ndarray
    end: np.ndarray
    rejects: list[tuple[str, str]] = field(default_factory=list)
    chain: np.ndarray | None = None  # per pair: the chain it is a leg of (chain files only)
    leg: np.ndarray | None = None  # and its place in that chain, from 0

    def __len__(self) -> int:
        return len(self.start)


def candidate_rows(store, where: str | None = None, limit: int | None = None) -> np.ndarray:
    """Rows a draw may use: those matching `where` with a finite z, the first `limit` of them."""
    rows = store.where(where) if where else np.arange(len(store))
    if len(rows) == 0:
        raise StoreError(f"{store.path}: --where {where!r} matches no row")
    z = store.vectors(rows)
    rows = rows[np.isfinite(z).all(axis=1)]
    if len(rows) == 0:
        raise StoreError(f"{store.path}: none of the selected rows has a finite z (all rejected "
                         "by the codec that wrote the store)")
    return rows[:limit] if limit else rows


def random_pairs(rows: np.ndarray, n: int, seed: int = 0) -> Pairs:
    """n pairs of two different rows, drawn uniformly with a seed."""
    if len(rows) < 2:
        raise StoreError(f"random pairs need at least 2 rows to choose from, got {len(rows)}")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(rows), n)
    second = (first + rng.integers(1, len(rows), n)) % len(rows)  # never the same row
    return Pairs(rows[first], rows[second])


def neighbour_pairs(store, rows: np.ndarray, k: int, metric: str = "euclidean") -> Pairs:
    """Each row paired with its k-th nearest neighbour among `rows` (itself left out)."""
    from latentsci.store.neighbours import top_k

    if not 1 <= k < len(rows):
        raise StoreError(f"--neighbours {k}: needs 1 <= K < {len(rows)} (the rows to pair among)")
    allowed = np.zeros(len(store), dtype=bool)
    allowed[rows] = True
    found, _ = top_k(store, store.vectors(rows), k, metric, exclude_rows=rows, allowed=allowed)
    return Pairs(rows, found[:, k - 1])


def _pair_line(row: dict, line: int, store) -> tuple[int, int] | tuple[str, str]:
    """The two rows of one line of a pair file, or (where, why) it cannot be used."""
    where = f"line {line}"
    start, end = (row.get("start") or "").strip(), (row.get("end") or "").strip()
    if not start or not end:
        return where, "needs a start and an end id"
    try:
        found = store.rows_of([start, end])
    except (StoreError, ValueError) as exc:
        return where, str(exc).split(": ", 1)[-1]
    return int(found[0]), int(found[1])


def _read_pair_file(path: Path, store) -> tuple[list[tuple[int, int, int]], list]:
    """(line, start row, end row) of each readable line, and (where, why) of the others."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        found, rejects = [], []
        for line, row in enumerate(reader, start=2):
            got = _pair_line(row, line, store)
            if isinstance(got[0], str):
                rejects.append(got)
            else:
                found.append((line, *got))
    return found, rejects


def _header(path: Path) -> set[str]:
    """The column names of a pair file, refused unless it is start,end or chain,id."""
    with path.open(newline="") as handle:
        names = csv.DictReader(handle).fieldnames or []
    if {"start", "end"} <= set(names) or {"chain", "id"} <= set(names):
        return set(names)
    raise InputDataError(f"{path}: expected a CSV header with 'start' and 'end' id columns (pairs)"
                         f" or 'chain' and 'id' (anchors of each chain in order), got {names}")


def _read_chain_file(path: Path, store) -> tuple[list[tuple[int, int, int, str, int]], list]:
    """(line, start row, end row, chain, leg) of each leg of every usable chain, and (where,
    why) of the chains refused whole (an anchor that is not in the store breaks its chain)."""
    anchors: dict[str, list[tuple[int, str]]] = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            name = (row.get("chain") or "").strip()
            anchors.setdefault(name, []).append((line, (row.get("id") or "").strip()))
    found, rejects = [], []
    for name, members in anchors.items():
        where = f"chain {name!r}" if name else f"line {members[0][0]}"
        ids = [i for _, i in members]
        if not name or len(members) < 2 or not all(ids):
            why = ("has no chain name" if not name else "needs at least 2 anchors"
                   if len(members) < 2 else f"line {members[ids.index('')][0]} has no id")
            rejects.append((where, why))
            continue
        try:
            rows = store.rows_of(ids)
        except (StoreError, ValueError) as exc:
            rejects.append((where, str(exc).split(": ", 1)[-1]))
            continue
        found += [(members[n][0], int(rows[n]), int(rows[n + 1]), name, n)
                  for n in range(len(rows) - 1)]
    return found, rejects


def pairs_from_file(path: Path, store) -> Pairs:
    """Pairs from a CSV with `start` and `end` id columns, or legs of chains from one with
    `chain` and `id` columns (anchors in file order); bad lines or chains are refused with a
    reason."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: no such pair file")
    chains = "start" not in _header(path)
    found, rejects = (_read_chain_file if chains else _read_pair_file)(path, store)
    lines = np.asarray([f[0] for f in found], dtype=np.int64)
    start = np.asarray([f[1] for f in found], dtype=np.int64)
    end = np.asarray([f[2] for f in found], dtype=np.int64)
    finite = (np.isfinite(store.vectors(start)).all(axis=1)
              & np.isfinite(store.vectors(end)).all(axis=1))
    if chains:  # a chain with an anchor the codec rejected is refused whole
        names = np.asarray([f[3] for f in found], dtype=object)
        broken = set(names[~finite])
        rejects += [(f"chain {n!r}", "an anchor has no latent (the codec rejected it)")
                    for n in dict.fromkeys(names[~finite])]
        finite = np.array([n not in broken for n in names], dtype=bool)
    else:
        rejects += [(f"line {n}", "an end has no latent (the codec rejected it)")
                    for n in lines[~finite]]
    if not finite.any():
        first = f" (first: {rejects[0][0]}: {rejects[0][1]})" if rejects else ""
        raise InputDataError(f"{path}: no usable {'chain' if chains else 'pair'}{first}")
    if not chains:
        return Pairs(start[finite], end[finite], rejects)
    return Pairs(start[finite], end[finite], rejects,
                 np.asarray([f[3] for f in found], dtype=object)[finite],
                 np.asarray([f[4] for f in found], dtype=np.int64)[finite])

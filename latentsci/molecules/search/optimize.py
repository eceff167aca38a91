"""`latentsci optimize`: one search under a budget of oracle calls, or JT-VAE's constrained
protocol (each start molecule searched from its own latent with its own budget, starts fanned out
as Ray tasks). Every search is resumable: its call log and optimiser state live in the run folder.

Outside PMO mode latent methods pass their proposals through the caps (heavy atoms, ring size)
and the OOD gate when one is given, before any oracle call; rejects are counted by reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from latentsci.latent.search.latent_methods import LATENT_METHODS
from latentsci.latent.search.objective import OracleError

METHODS = ("screening", "graph_ga", *LATENT_METHODS)
LOCAL_INITIAL = 20  # random labels before the first fit, searching from a start ...
LOCAL_SPREAD = 0.5  # ... and the spread of draws around it (whitened units)


@dataclass(frozen=True)
class SearchRequest:
    """What to optimise, how, with which budget, and the guards outside PMO mode."""

    objective: str
    method: str
    budget: int
    folder: Path  # call logs and optimiser states (a rerun resumes from them)
    library: tuple[str, ...]
    model: str | None = None
    seed: int = 0
    batch_size: int = 100
    gate: str | None = None  # a saved OOD detector folder
    pmo: bool = False
    max_heavy_atoms: int = 50
    max_ring_size: int = 8
    workers: int = 1
    options: dict = field(default_factory=dict)
    similarity: float | None = None  # from a start: proposals less similar are never scored ...
    similarity_filter: bool = True  # ... unless False (JT-VAE scored every decode)


def check_request(request: SearchRequest) -> None:
    """One line before any work: unknown method or objective, an empty budget, a gate that
    belongs to another codec."""
    from latentsci.latent.search.objective import get_objective

    if request.method not in METHODS:
        raise OracleError(f"unknown method {request.method!r} (methods: {', '.join(METHODS)})")
    get_objective(request.objective)
    if request.budget < 1:
        raise OracleError(f"--budget must be at least one call, got {request.budget}")
    if request.similarity is not None and not 0 < request.similarity <= 1:
        raise OracleError(f"--similarity must be in (0, 1], got {request.similarity}")
    _check_options(request)
    if request.gate is not None and not request.pmo:
        _guard(request)  # loads and checks the detector against the codec


def _check_options(request: SearchRequest) -> None:
    """Method options that the method does not have are refused in one line."""
    from latentsci.latent.search.latent_methods import typed_config
    from latentsci.molecules.search.graph_ga import GraphGAConfig

    if request.method in LATENT_METHODS:
        local = request.similarity is not None
        config = typed_config(LATENT_METHODS[request.method][1],
                              effective_options(request, local), request.method)
        initial = getattr(config, "initial", 0)
        if initial >= request.budget:
            raise OracleError(f"{request.method}: {initial} random draws come before the first "
                              f"fit, leaving nothing of a budget of {request.budget}; lower "
                              f"them (--set initial=K) or raise --budget")
    elif request.method == "graph_ga":
        typed_config(GraphGAConfig, request.options, "graph_ga")
    elif request.options:
        raise OracleError(f"screening takes no options, got {', '.join(request.options)}")


def _guard(request: SearchRequest, origin_smiles: str | None = None):
    """Caps and OOD gate of a latent search outside PMO mode (None in PMO mode); searching from
    a start molecule, the caps are at least the start's own size and largest ring."""
    from latentsci.latent.search.guards import chained, ood_guard
    from latentsci.molecules.search.caps import structure_caps
    from latentsci.molecules.search.latent import molecule_codec

    if origin_smiles is not None and request.similarity is not None and request.similarity_filter:
        from latentsci.molecules.search.constrained import similarity_guard

        close = similarity_guard(origin_smiles, request.similarity)
    else:
        close = None
    if request.pmo:
        return close
    gate = ood_guard(request.gate, molecule_codec(request.model)) if request.gate else None
    heavy, ring = request.max_heavy_atoms, request.max_ring_size
    if origin_smiles is not None:
        from latentsci.molecules.search.caps import size_and_largest_ring

        start_heavy, start_ring = size_and_largest_ring(origin_smiles)
        heavy, ring = max(heavy, start_heavy), max(ring, start_ring)
    return chained(close, structure_caps(heavy, ring), gate)


def build_optimiser(request: SearchRequest, origin_smiles: str | None = None):
    """The optimiser of a request (searching from a start molecule's latent if given)."""
    from latentsci.latent.search.latent_methods import latent_optimiser, typed_config
    from latentsci.latent.search.screening import Screening
    from latentsci.molecules.search.graph_ga import GraphGA, GraphGAConfig
    from latentsci.molecules.search.latent import molecule_codec, molecule_space

    library = list(request.library)
    if request.method == "screening":
        return Screening(library, request.seed)
    if request.method == "graph_ga":
        pool = [origin_smiles] if origin_smiles else library
        return GraphGA(pool, request.seed, typed_config(GraphGAConfig, request.options, "graph_ga"))
    space = molecule_space(request.model, library, _guard(request, origin_smiles))
    origin = None
    if origin_smiles is not None:
        encoded = molecule_codec(request.model).encode([origin_smiles])
        if encoded.reasons[0] is not None:
            raise OracleError(f"the model cannot encode it: {encoded.reasons[0]}")
        origin = space.gaussian.whiten(encoded.z)[0]
    return latent_optimiser(request.method, space, request.seed, origin,
                            effective_options(request, origin_smiles is not None))


def effective_options(request: SearchRequest, local: bool) -> dict:
    """The method's options: searching from a start, draws near it (spread 0.5) and fewer
    random labels first (20), unless the user set them."""
    options = dict(request.options)
    if local and request.method == "latent_random":  # its options are the draws'
        options = {"spread": LOCAL_SPREAD, **options}
    elif local and request.method in LATENT_METHODS:
        options["draws"] = {"spread": LOCAL_SPREAD, **options.get("draws", {})}
        options.setdefault("initial", LOCAL_INITIAL)
    return options


def run_one_search(request: SearchRequest, folder: Path, origin_smiles: str | None = None,
                   progress=None) -> tuple[pd.DataFrame, dict]:
    """One search to its budget: its scored molecules in call order and what was rejected."""
    from latentsci.latent.search import BudgetedOracle, CallLog, get_objective
    from latentsci.latent.search.optimiser import run_search

    optimiser = build_optimiser(request, origin_smiles)
    oracle = BudgetedOracle(get_objective(request.objective), request.budget,
                            CallLog(folder / "calls"), request.method, request.objective,
                            request.seed, workers=request.workers, actor_cpus=0)
    try:
        run_search(optimiser, oracle, folder / "state.json", request.batch_size,
                   progress=progress)
    finally:
        oracle.close()
    calls = oracle.log.read()
    calls = calls[calls["index"] >= 0].sort_values("index")
    rows = pd.DataFrame({"smiles": calls["item"].to_numpy(), "score": calls["score"].to_numpy(),
                         "call": calls["index"].to_numpy() + 1, "method": request.method,
                         "error": calls["error"].to_numpy()})
    space = getattr(optimiser, "space", None)
    rejected = dict(space.rejected) if space is not None else {}
    return rows, rejected


def search(request: SearchRequest, progress=None) -> tuple[pd.DataFrame, dict]:
    """The unconstrained search: scored molecules and rejects by reason."""
    check_request(request)
    return run_one_search(request, request.folder / "search", progress=progress)


def _failed(record: dict, reason) -> dict:
    """A start that could not be searched: a failure with its reason."""
    return {**record, "success": False, "improvement": float("nan"), "reason": str(reason),
            "rows": None, "rejected": {}}


def _start_task(starts: list[tuple[int, str]], request: SearchRequest, delta: float,
                start_scores: dict[str, float]) -> list[dict]:
    """A Ray task: constrained searches of a few starts; a start that fails says why."""
    from latentsci.molecules.search.constrained import (count_similarity, improvements,
                                                         start_outcome)

    out = []
    for number, start in starts:
        record = {"start": number, "start_smiles": start, "start_score": start_scores[start]}
        if not np.isfinite(record["start_score"]):
            out.append(_failed(record, "not a valid SMILES, or the objective cannot score it"))
            continue
        try:
            rows, rejected = run_one_search(request, request.folder / f"start{number:05d}", start)
        except Exception as exc:  # one start's failure (a GP that will not fit, a user
            # oracle that raises) is that start's reason; the other starts go on
            out.append(_failed(record, exc if isinstance(exc, OracleError)
                               else f"{type(exc).__name__}: {exc}"))
            continue
        rows["start_smiles"] = start
        rows["similarity"] = count_similarity(start, list(rows["smiles"]))
        rows["improvement"] = improvements(rows["score"], rows["similarity"],
                                           record["start_score"], delta)
        success, gain = start_outcome(rows["improvement"].to_numpy())
        reason = None if success else (f"no molecule with similarity >= {delta} scored above "
                                       "the start")
        out.append({**record, "success": success, "improvement": gain, "reason": reason,
                    "rows": rows.to_dict("list"), "rejected": rejected})
    return out


def constrained(request: SearchRequest, starts: list[str], delta: float,
                progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Each start searched on its own budget: (scored molecules, one row per start, rejects)."""
    from latentsci.latent.search import get_objective
    from latentsci.runtime import map_batches

    request = replace(request, similarity=delta)
    check_request(request)
    if not starts:
        raise OracleError("the start file holds no molecules")
    objective = get_objective(request.objective)
    start_scores = _start_scores(objective, starts)
    numbered = list(enumerate(starts))
    chunks = [numbered[i : i + 4] for i in range(0, len(numbered), 4)]
    done = map_batches(_start_task, chunks, desc="starts", progress=progress,
                       weight=len, request=request, delta=delta, start_scores=start_scores)
    records = [r for chunk in done for r in chunk]
    molecules = [pd.DataFrame(r["rows"]) for r in records if r.get("rows")]
    rejected: Counter = Counter()
    for r in records:
        rejected.update(r["rejected"])
    per_start = pd.DataFrame([{k: v for k, v in r.items() if k not in ("rows", "rejected")}
                              for r in records])
    table = pd.concat(molecules, ignore_index=True) if molecules else pd.DataFrame()
    return table, per_start, dict(rejected)


def _start_scores(objective, starts: list[str]) -> dict[str, float]:
    """Each start's own score (not counted against any budget: the protocol's reference)."""
    values = {}
    for start in dict.fromkeys(starts):
        key = objective.canonical(start)
        values[start] = float(objective.score([key])[0]) if key is not None else float("nan")
    return values


REQUEST_FILE = "request.json"  # what a run folder's call logs were paid for


def request_record(request: SearchRequest) -> dict:
    """What the scores and states of a run folder depend on (the library by digest)."""
    import hashlib

    library = hashlib.sha256("\n".join(request.library).encode()).hexdigest()[:16]
    return {"objective": request.objective, "method": request.method, "seed": request.seed,
            "model": request.model, "options": request.options, "pmo": request.pmo,
            "gate": request.gate, "max_heavy_atoms": request.max_heavy_atoms,
            "max_ring_size": request.max_ring_size, "similarity": request.similarity,
            "similarity_filter": request.similarity_filter, "library": library}


def check_folder(folder: Path, request: SearchRequest) -> None:
    """A run folder resumes only the search it was made for: another request is refused in one
    line (the budget may grow; the folder records the rest)."""
    import json

    path = Path(folder) / REQUEST_FILE
    mine = json.loads(json.dumps(request_record(request)))
    if path.is_file():
        recorded = json.loads(path.read_text())
        changed = sorted(k for k in set(mine) | set(recorded) if mine.get(k) != recorded.get(k))
        if changed:
            raise OracleError(f"{folder}: holds a search with other settings ({', '.join(changed)}"
                              f" differ); pass another --run-dir or --out, or delete it")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=2))

"""Fan a function out over batches as Ray tasks, gathering results in order with a progress bar."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

from latentsci.runtime.console import progress_stream

T = TypeVar("T")


def show_progress() -> bool:
    """Progress bars on a terminal, silence in CI and in logs."""
    return progress_stream().isatty() and not os.environ.get("CI")


def _get(ref):
    """ray.get, but a LatentsciError raised inside the task is re-raised as itself (one line)."""
    import ray

    from latentsci.errors import LatentsciError

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, LatentsciError):
            raise cause from None
        raise


TASK_RESOURCES = "LATENTSCI_TASK_RESOURCES"


def task_resources() -> dict[str, float]:
    """Custom Ray resources every fanned-out task asks for, from LATENTSCI_TASK_RESOURCES (a JSON
    object, e.g. '{"latentsci_slot": 1}'): an execution setting, not part of any stage's id,
    that places work on the nodes offering them (one slot per node spreads tasks over nodes)."""
    import json

    from latentsci.errors import ConfigError

    text = os.environ.get(TASK_RESOURCES, "").strip()
    if not text:
        return {}
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and k and isinstance(v, (int, float)) and not isinstance(v, bool)
            and v > 0 for k, v in found.items()):
        raise ConfigError(f"{TASK_RESOURCES}={text[:60]!r}: expected a JSON object of resource "
                          f"names and positive amounts, e.g. '{{\"latentsci_slot\": 1}}'")
    return {k: float(v) for k, v in found.items()}


def map_batches(fn: Callable[..., T], batches: Sequence[Any], desc: str, progress: bool = False,
                weight: Callable[[Any], int] = len, num_cpus: float = 1, num_gpus: float = 0,
                **kwargs: Any) -> list[T]:
    """fn(batch, **kwargs) for every batch on Ray workers; results come back in batch order.

    The bar counts items (sum of `weight(batch)`), not tasks, so its rate reads as items/s.
    Shared keyword arguments are put in the object store once, not once per task. With
    num_gpus > 0 (a fraction packs several tasks on one GPU) Ray sets CUDA_VISIBLE_DEVICES.

    A task whose worker or node dies runs again elsewhere (Ray's default of 3 retries on
    system failures), so `fn` must be safe to rerun: the store writers here each rewrite whole
    blocks of their own, which a retry overwrites (tests/test_two_nodes.py kills a node).
    """
    import ray

    resources = task_resources()
    # with per-node slots asked for, lease workers round the nodes: Ray's default fills the
    # driver's node to half its resources before it spills tasks to others
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, resources=resources or None,
                        scheduling_strategy="SPREAD" if resources else "DEFAULT")(fn)
    shared = {k: ray.put(v) for k, v in kwargs.items()}
    refs = [remote.remote(batch, **shared) for batch in batches]
    position = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=sum(weight(b) for b in batches), desc=desc, disable=not progress,
              unit="it", dynamic_ncols=True, file=progress_stream()) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = position[done[0]]
            results[i] = _get(done[0])
            bar.update(weight(batches[i]))
    return results

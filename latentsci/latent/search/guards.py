"""Guards a latent search passes its proposals through outside PMO mode: the OOD gate of a
detector fitted on the codec's store, and any domain's caps, composed in order."""

from __future__ import annotations

from pathlib import Path

from latentsci.latent.search.latent_space import Guard


def ood_guard(detector_folder: str | Path, codec) -> Guard:
    """Rejects what the saved detector calls out of distribution (checked against the codec)."""
    from latentsci.latent.ood_files import load_detector
    from latentsci.latent.ood_fit import gate
    from latentsci.store import LatentStore

    detector = load_detector(Path(detector_folder), codec)
    fitted_on = LatentStore.open(detector.store)

    def guard(items: list[str]) -> list[str | None]:
        verdict = gate(detector, fitted_on, codec, items=items)
        return [None if keep else (reason or "out of distribution")
                for keep, reason in zip(verdict.keep, verdict.reasons)]

    return guard


def chained(*guards: Guard | None) -> Guard | None:
    """One guard applying each in turn (the first reason wins); None when there are none."""
    present = [g for g in guards if g is not None]
    if not present:
        return None

    def guard(items: list[str]) -> list[str | None]:
        reasons: list[str | None] = [None] * len(items)
        for each in present:
            open_rows = [i for i, r in enumerate(reasons) if r is None]
            if not open_rows:
                break
            for i, reason in zip(open_rows, each([items[i] for i in open_rows])):
                reasons[i] = reason
        return reasons

    return guard

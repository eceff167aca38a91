"""MOSES-compatible metrics of generated molecules (definitions as in moses/metrics/metrics.py)."""

from latentsci.molecules.metrics.moses import moses_metrics

__all__ = ["moses_metrics"]

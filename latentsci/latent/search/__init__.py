"""Search under a budget of expensive evaluations, knowing no domain: objectives and their
registry, the budgeted oracle every optimiser calls (cache, budget, call log, Ray actors), the
desirability modifiers objectives are built from, and PMO's area-under-the-curve metric.

A domain registers its objectives (molecules: `latentsci.molecules.oracles`); a user's own is a
`module:function` entry point scoring a list of items.
"""

from latentsci.latent.search.auc import top_auc, top_mean
from latentsci.latent.search.budget import BudgetedOracle
from latentsci.latent.search.calls import CallLog
from latentsci.latent.search.objective import (
    Objective,
    OracleError,
    get_objective,
    list_objectives,
    register_objective,
)
from latentsci.latent.search.pool import OraclePool

__all__ = ["BudgetedOracle", "CallLog", "Objective", "OracleError", "OraclePool",
           "get_objective", "list_objectives", "register_objective", "top_auc", "top_mean"]

"""JT-VAE's constrained protocol as pure functions: count-fingerprint similarity, which molecules
count, a start's success and improvement, the summary over starts, and the similarity guard."""

import numpy as np
import pytest

from latentsci.molecules.search.caps import cap_reason, size_and_largest_ring
from latentsci.molecules.search.constrained import (count_similarity, improvements,
                                                    protocol_summary, similarity_guard,
                                                    start_outcome)


def test_similarity_is_one_to_itself_lower_to_others_nan_when_unreadable():
    values = count_similarity("CC(=O)Nc1ccc(O)cc1", ["CC(=O)Nc1ccc(O)cc1", "CC(=O)Nc1ccccc1",
                                                     "CCO", "not smiles"])
    assert values[0] == pytest.approx(1.0)
    assert 0.3 < values[1] < 1.0 and values[2] < values[1] and np.isnan(values[3])


def test_only_similar_molecules_count_and_the_best_positive_gain_is_the_improvement():
    gains = improvements(np.array([1.0, 5.0, 3.0]), np.array([0.5, 0.3, 0.45]), 0.0, 0.4)
    assert np.isnan(gains[1]) and list(gains[[0, 2]]) == [1.0, 3.0]
    assert start_outcome(gains) == (True, 3.0)
    assert start_outcome(np.array([-1.0, np.nan]))[0] is False
    summary = protocol_summary([(True, 2.0), (True, 4.0), (False, np.nan), (False, np.nan)])
    assert summary == {"starts": 4.0, "success_rate": 0.5, "improvement_mean": 3.0,
                       "improvement_sd": 1.0}


def test_similarity_guard_and_caps_say_why():
    guard = similarity_guard("CC(=O)Nc1ccc(O)cc1", 0.4)
    assert guard(["CC(=O)Nc1ccc(O)cc1", "CCCCCC"]) == [
        None, "similarity to the start below 0.4"]
    assert cap_reason("C" * 51, 50, 8) == "51 heavy atoms (cap 50)"
    assert cap_reason("C1CCCCCCCC1", 50, 8) == "a ring of 9 atoms (cap 8)"
    assert cap_reason("c1ccccc1", 50, 8) is None
    assert size_and_largest_ring("C1CCCCCCCC1") == (9, 9)

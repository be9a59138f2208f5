"""The shared statistics: Holm's step-down method on textbook cases."""

import pytest

from modelloop.stats import holm, worse_by_more_than


def test_holm_rejects_step_by_step_and_stops_at_the_first_acceptance() -> None:
    # m = 4, alpha 0.05: levels 0.0125, 0.0167, 0.025, 0.05 in the order of the p-values.
    decisions = holm([0.01, 0.04, 0.012, 0.03], 0.05)
    assert [rejected for rejected, _ in decisions] == [True, False, True, False]
    assert [level for _, level in decisions] == pytest.approx([0.0125, 0.05, 0.05 / 3, 0.025])


def test_holm_of_nothing_is_nothing() -> None:
    assert holm([], 0.05) == []


def test_an_equal_proportion_is_no_evidence_and_a_large_gap_is() -> None:
    assert worse_by_more_than(0.9, 1000, 0.9, 1000, 0.0, 0.0) > 0.5
    assert worse_by_more_than(0.9, 1000, 0.8, 1000, 0.1, 0.0) < 1e-9
    # Within the margin: no evidence either.
    assert worse_by_more_than(0.9, 1000, 0.85, 1000, 0.05, 0.05) > 0.5

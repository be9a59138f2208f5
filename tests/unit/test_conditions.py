from datetime import UTC, datetime

from modelloop.conditions import condition, merge_conditions

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)


def test_transition_time_moves_only_when_status_changes() -> None:
    first = merge_conditions([], [condition("Ready", "False", "Pending")], T1, 1)
    same = merge_conditions(first, [condition("Ready", "False", "StillPending", "x")], T2, 2)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["reason"] == "StillPending"
    assert same[0]["observedGeneration"] == 2
    flipped = merge_conditions(same, [condition("Ready", "True", "Available")], T2, 2)
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_other_conditions_are_kept_and_order_is_stable() -> None:
    current = merge_conditions([], [condition("Healthy", "True", "AllPass")], T1, 1)
    merged = merge_conditions(current, [condition("Ready", "True", "Available")], T1, 1)
    assert [c["type"] for c in merged] == ["Healthy", "Ready"]
    assert merge_conditions(merged, [condition("Ready", "True", "Available")], T2, 1) == merged

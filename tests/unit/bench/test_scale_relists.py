"""The steady window is placed where no operator relists its watch caches."""

import pytest
from bench.scale.measure import clear_of_relists

PERIOD, WINDOW, MARGIN = 600.0, 90.0, 30.0


@pytest.mark.parametrize(
    ("now", "leading_since", "expected"),
    [
        (100.0, [0.0], 100.0),  # the first relist (600) comes after the window: now
        (480.0, [0.0], 480.0),  # ends at 570, before 600
        (520.0, [0.0], 630.0),  # would hold the relist at 600: after it and its margin
        (610.0, [0.0], 630.0),  # the relist at 600 may still run
        (640.0, [0.0], 640.0),
        (1150.0, [0.0], 1230.0),  # the second relist, at 1200
        (520.0, [0.0, 100.0], 730.0),  # past 600, then past the other's at 700
        (100.0, [], 100.0),
    ],
)
def test_the_window_starts_clear_of_every_operators_relists(
    now: float, leading_since: list[float], expected: float
) -> None:
    start = clear_of_relists(now, leading_since, PERIOD, WINDOW, MARGIN)
    assert start == expected
    for since in leading_since:  # no relist from the margin before the window to its end
        relists = [since + k * PERIOD for k in range(1, 5)]
        assert not [r for r in relists if start - MARGIN < r <= start + WINDOW]


def test_with_no_clear_window_within_a_period_the_window_starts_now() -> None:
    crowded = [float(i * 100) for i in range(6)]  # a relist every 100 s
    assert clear_of_relists(650.0, crowded, PERIOD, WINDOW, MARGIN) == 650.0

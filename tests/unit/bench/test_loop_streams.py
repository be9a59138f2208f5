"""The loop benchmark's drifting streams (bench/loop/streams.py): deterministic, each drift
kind turns the boundaries of the slices it names and no other, labels arrive late."""

import math

import numpy as np
import pytest
from bench.loop.streams import DAY, KINDS, SLICES, Stream, drift_concept, generate, with_lag
from bench.loop.trainer import fit_slices

WARMUP, DAYS, VOLUME = 14, 180, 300


def boundary_angles(stream: Stream, first_day: int, days: int) -> dict[str, float]:
    """The angle of each slice's fitted boundary on the examples of those days."""
    lo, hi = np.searchsorted(stream.time, [first_day * DAY, (first_day + days) * DAY])
    weights = fit_slices(stream.x[lo:hi], stream.slice[lo:hi], stream.y[lo:hi], 3, None)
    return {name: math.atan2(w[1], w[0]) for name, w in zip(stream.slices, weights, strict=True)}


def turned(a: float, b: float) -> float:
    """How far apart two angles are, in radians (0 to pi)."""
    return abs(math.remainder(a - b, 2 * math.pi))


def test_a_seed_gives_the_same_stream_and_a_longer_one_starts_with_it() -> None:
    stream = generate("gradual", 7, 20, WARMUP, VOLUME, 1)
    assert stream.same(generate("gradual", 7, 20, WARMUP, VOLUME, 1))
    assert not stream.same(generate("gradual", 8, 20, WARMUP, VOLUME, 1))
    longer = generate("gradual", 7, 30, WARMUP, VOLUME, 1)
    n = len(stream.time)
    assert np.array_equal(longer.time[:n], stream.time)
    assert np.array_equal(longer.y[:n], stream.y)
    assert len(stream.time) == (WARMUP + 20) * VOLUME * len(SLICES)


@pytest.mark.parametrize(
    ("kind", "before", "after", "moved"),
    [
        ("gradual", 0, 180, {"mobile", "web"}),
        ("abrupt", 60, 80, {"web"}),  # the jump: day 14 + 180 // 3 = 74
        ("recurring", 0, 30, {"store"}),  # seasons of 30 days
        ("recurring", 0, 60, set()),  # ... and back
        ("mixed", 0, 150, {"mobile", "web", "store"}),
    ],
)
def test_a_drift_kind_turns_the_boundaries_it_names_and_no_other(
    kind: str, before: int, after: int, moved: set[str]
) -> None:
    stream = generate(kind, 1, DAYS, WARMUP, VOLUME, 1)
    assert stream.concept is not None
    assert {n for n, c in stream.concept.slices.items() if c.drifts} >= moved
    first, then = boundary_angles(stream, before, 10), boundary_angles(stream, after, 10)
    for name in SLICES:
        if name in moved:
            assert turned(first[name], then[name]) > 0.5, name
        else:
            assert turned(first[name], then[name]) < 0.15, name


@pytest.mark.parametrize("kind", KINDS)
def test_the_fitted_boundaries_follow_the_concept(kind: str) -> None:
    stream = generate(kind, 2, DAYS, WARMUP, VOLUME, 1)
    truth = drift_concept(kind, DAYS, WARMUP)
    for day in (0, 100, 170):
        fitted = boundary_angles(stream, day, 3)
        for name in SLICES:
            angle = float(truth.slices[name].angle(np.array([day + 1.5]))[0])
            assert turned(fitted[name], angle) < 0.2, (day, name)


def test_labels_arrive_lag_days_after_their_prediction() -> None:
    stream = generate("abrupt", 1, 10, WARMUP, VOLUME, 3)
    assert stream.lag == 3
    assert np.array_equal(stream.label_time - stream.time, np.full(len(stream.time), 3 * DAY))
    later = with_lag(stream, 1)
    assert np.array_equal(later.label_time, stream.time + DAY)
    assert np.array_equal(later.y, stream.y)


def test_an_unknown_drift_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown drift kind"):
        drift_concept("sudden", DAYS, WARMUP)

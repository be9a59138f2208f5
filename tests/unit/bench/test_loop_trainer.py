"""What the example trainer trains on (examples/trainer/churn.py), which the benchmark's
trainer shares: a slice whose world changed in the data window trains on its data since
the change; MODELLOOP_FAILING_SINCE says which slices fail and bounds the search."""

import json

import numpy as np
import pytest
from bench.loop.streams import DAY, generate
from bench.loop.trainer import train
from examples.trainer.churn import (
    MIN_RECENT,
    MIN_Z,
    changed_at,
    failing_since,
    held_out,
    training_rows,
)
from numpy.typing import NDArray

N = 4000
T = np.arange(N, dtype=np.float64)  # one example a second


def hits(before: float, after: float, at: int = 3000, seed: int = 1) -> NDArray[np.bool_]:
    """The champion right on each example with one probability before ``at``, another after."""
    p = np.where(np.arange(N) < at, before, after)
    return np.random.default_rng(seed).uniform(size=N) < p


@pytest.mark.parametrize(
    ("right", "fell", "until", "expected"),
    [
        # A fall at 3000, from 0.87 to 0.3: found within a few examples.
        (hits(0.87, 0.3), True, None, 3000.0),
        (hits(0.87, 0.3), True, 3500.0, 3000.0),  # ModelLoop's onset came after it
        # The later part starts before the onset, and holds MIN_RECENT examples at least.
        (hits(0.87, 0.3), True, 2500.0, 2500.0),
        (hits(0.87, 0.3, at=N - MIN_RECENT // 2), True, None, N - MIN_RECENT),
        # No change; a change smaller than MIN_CHANGE.
        (hits(0.87, 0.87), True, None, None),
        (hits(0.87, 0.85), True, None, None),
        # A rise is no fall, and the other way round.
        (hits(0.3, 0.87), True, None, None),
        (hits(0.3, 0.87), False, None, 3000.0),
        (hits(0.87, 0.3), False, None, None),
    ],
)
def test_the_change_is_where_the_champions_accuracy_moves_most(
    right: NDArray[np.bool_], fell: bool, until: float | None, expected: float | None
) -> None:
    found = changed_at(T, right, fell, until)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected, abs=50)


def test_a_change_nothing_hinted_at_must_stand_out_of_the_noise_of_many_splits() -> None:
    """No change, 3850 splits of 50 examples at least: the best of them differs by more
    than MIN_CHANGE, but by fewer than MIN_Z standard errors."""
    noise = hits(0.87, 0.87, seed=1)
    assert changed_at(T, noise, False, minimum=50) == 3945.0
    assert changed_at(T, noise, False, minimum=50, z_min=MIN_Z) is None
    assert changed_at(T, hits(0.3, 0.87), False, z_min=MIN_Z) == pytest.approx(3000, abs=50)


def test_only_a_failing_slice_whose_champion_fell_and_any_slice_whose_champion_rose_are_cut() -> (
    None
):
    t = np.concatenate([T] * 4)
    s = np.repeat(np.arange(4), N)
    right = np.concatenate(
        [
            hits(0.87, 0.3, seed=1),  # 0: failing, fell
            hits(0.87, 0.3, seed=2),  # 1: fell, but ModelLoop does not say it fails
            hits(0.3, 0.87, seed=3),  # 2: rose (the champion learned the new world)
            hits(0.87, 0.87, seed=4),  # 3: failing, but no change in the window
        ]
    )
    keep = training_rows(t, s, right, {0: 3500.0, 3: 3500.0})
    kept = [int(keep[s == i].sum()) for i in range(4)]
    assert kept == [pytest.approx(1000, abs=50), N, pytest.approx(1000, abs=50), N]
    assert keep[(s == 0) & (t >= 3100)].all()
    assert not keep[(s == 0) & (t < 2900)].any()


def test_each_slice_holds_out_its_latest_fifth_of_what_it_trains_on() -> None:
    t = np.concatenate([T, T])
    s = np.repeat([0, 1], N)
    keep = ~((s == 0) & (t < 3000))  # slice 0 trains on its last 1000 examples
    held = held_out(t, s, keep)
    assert not (held & ~keep).any()
    assert [int(held[s == i].sum()) for i in (0, 1)] == [200, 800]
    assert t[held & (s == 0)].min() >= 3799
    assert t[held & (s == 1)].min() >= 3199


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("{}", {}),
        (
            json.dumps({"web": "2026-03-02T00:00:00Z", "elsewhere": "2026-03-01T00:00:00Z"}),
            {2: 1772409600.0},
        ),
    ],
)
def test_failing_since_names_the_trainers_slices_by_index(
    text: str | None, expected: dict[int, float]
) -> None:
    assert failing_since(text, ("mobile", "store", "web")) == expected


def test_the_benchmarks_job_holds_out_a_fifth_of_the_failing_slices_data_since_its_change() -> None:
    """web's world jumps on day 30 (scored day 10); a Job on day 33 with labels a day late
    reads the labelled days 23..31: web's 2000 examples since the jump, 400 of them held
    out, or its 9 days on the whole window."""
    stream = generate("abrupt", 1, 30, 20, 1000, 1)
    champion = train(stream, 10 * DAY, 20 * DAY, None, None)
    assert champion is not None
    end = 33 * DAY
    onset = {2: 32 * DAY}  # the evaluation that saw the jump: web's labels of day 30
    runs = {
        "since the change": train(stream, end - 10 * DAY, end, champion.weights, onset),
        "whole window": train(stream, end - 10 * DAY, end, champion.weights, None),
    }
    held = {
        name: {m.slice: m.samples for m in trained.metrics.candidate}
        for name, trained in runs.items()
        if trained is not None
    }
    assert held["whole window"] == {"mobile": 1800, "store": 1800, "web": 1800}
    assert held["since the change"]["mobile"] == held["since the change"]["store"] == 1800
    assert held["since the change"]["web"] == pytest.approx(400, abs=20)
    web = {
        name: next(m.value for m in trained.metrics.candidate if m.slice == "web")
        for name, trained in runs.items()
        if trained is not None
    }
    assert web["since the change"] > 0.8 > web["whole window"]

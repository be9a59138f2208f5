"""Canary analysis: regression allowances, the two-proportion z-test against scipy,
Holm's correction, and the false-rollback rate of an identical canary by simulation."""

import math
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from modelloop.api.reasons import PairReason
from modelloop.api.vocabulary import PairOutcome
from modelloop.rollout.analysis import (
    CanaryTest,
    Judged,
    Pair,
    analyse,
    overall,
    spent_alpha,
    two_proportion_p_value,
)
from modelloop.stats import normal_cdf


def rate(stable: float, canary: float, n: float = 1000, **kw: Any) -> Pair:
    return Pair("precision", "eu", True, stable, canary, n, n, "proportion", min_samples=50, **kw)


@pytest.mark.parametrize("z", [-3.0, -1.0, 0.0, 0.5, 1.96, 4.0])
def test_normal_cdf_matches_scipy(z: float) -> None:
    assert normal_cdf(z) == pytest.approx(norm.cdf(z), abs=1e-12)


@pytest.mark.parametrize(
    ("stable", "canary", "n_s", "n_c", "allowed"),
    [(0.9, 0.88, 1000, 1000, 0.0), (0.5, 0.45, 400, 300, 0.0), (0.9, 0.85, 2000, 500, 0.02)],
)
def test_the_z_test_is_the_textbook_one(
    stable: float, canary: float, n_s: float, n_c: float, allowed: float
) -> None:
    pair = Pair("p", "s", True, stable, canary, n_s, n_c, "proportion", absolute=allowed)
    pooled = (stable * n_s + canary * n_c) / (n_s + n_c)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_s + 1 / n_c))
    correction = 0.5 * (1 / n_s + 1 / n_c)  # Yates
    expected = norm.sf(((stable - canary) - allowed - correction) / se)
    assert two_proportion_p_value(pair) == pytest.approx(expected, rel=1e-9)


def threshold(stable: float, canary: float, **kw: Any) -> Pair:
    return Pair("latency", "eu", False, stable, canary, test="threshold", **kw)


@pytest.mark.parametrize(
    ("pair", "outcome", "code", "reason"),
    [
        (threshold(0.20, 0.21, absolute=0.02), "pass", "WithinAllowance", "canary 0.21"),
        (threshold(0.20, 0.25, absolute=0.02), "fail", "BeyondAllowance", "canary 0.25"),
        (
            Pair("auc", "eu", True, 0.90, 0.88, test="threshold", relative=0.01),
            "fail",
            "BeyondAllowance",
            "canary 0.88",
        ),
        (rate(0.90, 0.80), "fail", "SignificantRegression", "canary 0.8"),  # many samples
        (rate(0.90, 0.89, n=200), "pass", "NotSignificant", "canary 0.89"),  # noise at this size
        (rate(0.90, 0.80, n=10), "inconclusive", "TooFewSamples", "too few samples for stable"),
        # The evaluation drops values under minSamples: the count still says why.
        (replace(rate(0.9, 0.8, n=10), stable=None), "inconclusive", "TooFewSamples", "too few"),
        (Pair("auc", "eu", True, 0.9, None), "inconclusive", "NoValue", "no value for the canary"),
        (Pair("auc", "eu", True, 0.9, math.nan), "inconclusive", "NotFinite", "a value is NaN"),
        (
            replace(rate(0.9, 0.9), canary_samples=None),
            "inconclusive",
            "NoSampleCount",
            "no sample count for the canary",
        ),
        (replace(rate(0.9, 0.9), stable=1.5), "inconclusive", "NotAProportion", "canary.test is"),
    ],
)
def test_single_pairs(pair: Pair, outcome: str, code: str, reason: str) -> None:
    [judged] = analyse([pair], confidence=0.95)
    assert (judged.outcome, judged.code) == (outcome, PairReason(code)), judged.reason
    assert judged.reason.startswith(reason), judged.reason


@pytest.mark.parametrize(
    ("pair", "method_used"),
    [
        # Values in [0, 1] with sample counts on both sides: tested as proportions.
        (Pair("accuracy", "eu", True, 0.9, 0.8, 1000, 1000), "SignificantRegression"),
        (Pair("accuracy", "eu", True, 0.9, 0.89, 200, 200), "NotSignificant"),
        # An error rate, lower is better: the same test, the other direction.
        (Pair("errors", "eu", False, 0.05, 0.15, 1000, 1000), "SignificantRegression"),
        # No sample counts: no test; an allowance set on purpose is a threshold.
        (Pair("auc", "eu", True, 0.9, 0.85, relative=0.02), "BeyondAllowance"),
        (Pair("auc", "eu", True, 0.9, 0.89, relative=0.02), "WithinAllowance"),
        # Not a proportion (latency in ms), counted: no test, allowance applies.
        (Pair("latency", "eu", False, 120, 150, 500, 500, absolute=10), "BeyondAllowance"),
        # Nothing to test with and no allowance: a raw difference is no evidence.
        (Pair("auc", "eu", True, 0.9, 0.89), "Untestable"),
        (Pair("latency", "eu", False, 120, 121, 500, 500), "Untestable"),
    ],
)
def test_the_default_test_is_chosen_by_what_the_metric_offers(pair: Pair, method_used: str) -> None:
    [judged] = analyse([pair], confidence=0.95)
    assert judged.code == PairReason(method_used), judged.reason
    assert pair.test == "auto"


def test_holm_corrects_for_the_number_of_pairs() -> None:
    # p ~ 0.02 alone fails at alpha 0.05, but not among 10 pairs (0.05 / 10 = 0.005).
    borderline = rate(0.90, 0.87, n=1000)
    assert 0.005 < two_proportion_p_value(borderline) < 0.05
    assert analyse([borderline], 0.95)[0].outcome == "fail"
    many = [borderline] + [rate(0.9, 0.9)] * 9
    assert [j.outcome for j in analyse(many, 0.95)] == ["pass"] * 10
    assert overall(analyse(many, 0.95)) == "pass"


def test_the_failing_slice_is_named_with_its_numbers() -> None:
    worse = Pair("precision", "new-users", True, 0.90, 0.80, 2000, 2000, "proportion")
    [judged] = analyse([worse], 0.95)
    assert judged.reason.startswith("canary 0.8 vs stable 0.9: worse by 0.1 (allowed 0); p = ")
    assert judged.pair.slice == "new-users"


def simulate(
    seed: int,
    truth_canary: float,
    pairs: int = 50,
    n: int = 500,
    analyses: int = 1,
    test: CanaryTest = "proportion",
) -> str:
    """One rollout: ``analyses`` analyses (independent data: the worst case for the
    spending), stopping at the first failure."""
    rng = np.random.default_rng(seed)
    truth = np.full(pairs, 0.9)
    truth[0] = truth_canary
    for test_number in range(1, analyses + 1):
        stable = rng.binomial(n, 0.9, size=pairs) / n
        canary = rng.binomial(n, truth) / n
        judged = analyse(
            [
                Pair(
                    f"m{i // 10}",
                    f"s{i % 10}",
                    True,
                    float(stable[i]),
                    float(canary[i]),
                    n,
                    n,
                    test=test,
                    min_samples=100,
                )
                for i in range(pairs)
            ],
            confidence=0.95,
            test_number=test_number,
        )
        if overall(judged) == "fail":
            return "fail"
    return "pass"


def test_the_level_is_spent_over_the_analyses_of_a_rollout() -> None:
    levels = [spent_alpha(0.95, k) for k in range(1, 10_000)]
    assert levels[0] == pytest.approx(0.05 * 6 / math.pi**2)
    assert sum(levels) < 0.05
    assert all(a > b for a, b in pairwise(levels))


def test_an_identical_canary_is_rolled_back_at_most_as_often_as_configured() -> None:
    # 5 metrics x 10 slices per analysis, 8 analyses per rollout, 1000 seeds: the
    # rollout-wide rate stays within alpha = 0.05 (measured: 0.030; one analysis at
    # alpha 0.05 alone was 0.041, so eight unspent ones would pass 0.2).
    failures = sum(simulate(seed, 0.9, analyses=8) == "fail" for seed in range(1000))
    assert failures / 1000 <= 0.05


def test_a_truly_worse_slice_is_caught() -> None:
    # 0.9 -> 0.8 on one slice of 50, 1000 labelled samples each side, at the first analysis.
    caught = sum(simulate(seed, 0.8, n=1000) == "fail" for seed in range(200))
    assert caught / 200 >= 0.95


def test_an_identical_canary_with_default_settings_is_not_rolled_back() -> None:
    # The API's defaults (test auto, no allowance) on 10 slices of an accuracy metric
    # with sample counts: the default test is the z-test, not a raw difference.
    failures = sum(
        simulate(seed, 0.9, pairs=10, n=300, analyses=8, test="auto") == "fail"
        for seed in range(500)
    )
    assert failures / 500 <= 0.05


LATE: dict[str, Any] = {"label_delay": timedelta(hours=1), "min_coverage": 0.8}


@pytest.mark.parametrize(
    ("late", "outcome", "code", "reason"),
    [
        (
            {"traffic_age": timedelta(minutes=20)},
            "waiting",
            "LabelsImmature",
            "waiting for labels: they come 1h late and the traffic judged is 20m old",
        ),
        (
            {"traffic_age": timedelta(hours=2), "canary_coverage": 0.42, "stable_coverage": 0.9},
            "waiting",
            "LabelsIncomplete",
            "waiting for labels: 42% complete for the canary, 90% complete for stable "
            "(minimum 80%)",
        ),
        (
            {"traffic_age": timedelta(hours=2), "stable_coverage": 0.9},
            "waiting",
            "LabelsIncomplete",
            "waiting for labels: unknown for the canary, 90% complete for stable (minimum 80%)",
        ),
        (
            {"traffic_age": timedelta(hours=2), "canary_coverage": 0.85, "stable_coverage": 0.9},
            "fail",
            "SignificantRegression",
            "canary 0.8 vs stable 0.9",
        ),
    ],
)
def test_a_pair_waits_until_its_labels_matured(
    late: dict[str, Any], outcome: str, code: str, reason: str
) -> None:
    [judged] = analyse([rate(0.9, 0.8, **LATE, **late)], 0.95)
    assert (judged.outcome, judged.code) == (outcome, code)
    assert judged.reason.startswith(reason)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["pass", "waiting"], "waiting"),
        (["inconclusive", "waiting"], "waiting"),
        (["fail", "waiting"], "fail"),
        (["pass", "inconclusive"], "inconclusive"),
        ([], "inconclusive"),
    ],
)
def test_an_analysis_with_a_waiting_pair_is_not_complete(
    outcomes: list[str], expected: str
) -> None:
    judged = [Judged(rate(0.9, 0.9), PairOutcome(o), PairReason.WITHIN_ALLOWANCE) for o in outcomes]
    assert overall(judged) == expected

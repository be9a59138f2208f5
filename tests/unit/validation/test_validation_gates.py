"""The offline gate on tables of candidates and champions."""

from typing import Any

import pytest

from modelloop.api.base import MetricSlice
from modelloop.api.model import ModelSpec
from modelloop.api.modelversion import GateCheck, OfflineMetrics
from modelloop.validation.gates import awaiting_judgement, validate

SERVING = {"template": {"spec": {"containers": [{"name": "s", "image": "x"}]}}}
SLICES = [
    {"name": "eu", "matchLabels": {"region": "eu"}},
    {"name": "us", "matchLabels": {"region": "us"}},
]
METRICS = [
    {"name": "auc", "query": "x", "higherIsBetter": True},
    {"name": "latency", "query": "x", "higherIsBetter": False},
]


def spec(gates: list[dict[str, Any]], require_all: bool = True) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "serving": SERVING,
            "slices": SLICES,
            "metrics": METRICS,
            "validation": {"gates": gates, "requireAllSlices": require_all},
        }
    )


def offline(
    candidate: dict[tuple[str, str], float], champion: dict[tuple[str, str], float] | None = None
) -> OfflineMetrics:
    def rows(values: dict[tuple[str, str], float]) -> list[dict[str, Any]]:
        return [{"metric": m, "slice": s, "value": v} for (m, s), v in values.items()]

    return OfflineMetrics.model_validate(
        {"candidate": rows(candidate), "champion": rows(champion or {})}
    )


AUC_BOTH = {("auc", "eu"): 0.91, ("auc", "us"): 0.88}
CHAMPION = {("auc", "eu"): 0.90, ("auc", "us"): 0.90}


@pytest.mark.parametrize(
    ("gates", "candidate", "champion", "require_all", "validated", "failing"),
    [
        # Absolute bounds.
        ([{"metric": "auc", "min": 0.85}], AUC_BOTH, None, True, True, []),
        (
            [{"metric": "auc", "min": 0.9}],
            AUC_BOTH,
            None,
            True,
            False,
            ["auc on slice us: 0.88 < min 0.9"],
        ),
        # Not worse than the champion: better on average, worse on one slice.
        (
            [{"metric": "auc", "notWorseThan": {"absolute": 0.01}}],
            AUC_BOTH,
            CHAMPION,
            True,
            False,
            ["auc on slice us: 0.88 vs champion 0.9: worse by 0.02 > 0.01"],
        ),
        (
            [{"metric": "auc", "notWorseThan": {"absolute": 0.03}}],
            AUC_BOTH,
            CHAMPION,
            True,
            True,
            [],
        ),
        (
            [{"metric": "auc", "notWorseThan": {"relative": 0.05}}],
            AUC_BOTH,
            CHAMPION,
            True,
            True,
            [],
        ),
        (
            [{"metric": "auc", "notWorseThan": {"relative": 0.01}}],
            AUC_BOTH,
            CHAMPION,
            True,
            False,
            ["auc on slice us: 0.88 vs champion 0.9: worse by 0.02 > 1% of champion"],
        ),
        # No tolerance given: no regression at all.
        (
            [{"metric": "auc", "slices": ["eu"], "notWorseThan": {}}],
            AUC_BOTH,
            CHAMPION,
            True,
            True,
            [],
        ),
        # Lower is better: a higher latency is the regression.
        (
            [{"metric": "latency", "notWorseThan": {"absolute": 0.005}}],
            {("latency", "eu"): 0.120, ("latency", "us"): 0.100},
            {("latency", "eu"): 0.110, ("latency", "us"): 0.130},
            True,
            False,
            ["latency on slice eu: 0.12 vs champion 0.11: worse by 0.01 > 0.005"],
        ),
        # Missing values fail unless requireAllSlices is off.
        (
            [{"metric": "auc", "min": 0.5}],
            {("auc", "eu"): 0.9},
            None,
            True,
            False,
            ["auc on slice us: the result has no candidate value"],
        ),
        ([{"metric": "auc", "min": 0.5}], {("auc", "eu"): 0.9}, None, False, True, []),
        (
            [{"metric": "auc", "notWorseThan": {"absolute": 0.1}}],
            AUC_BOTH,
            None,
            True,
            False,
            [
                "auc on slice eu: the result has no champion value on the same held-out data",
                "auc on slice us: the result has no champion value on the same held-out data",
            ],
        ),
    ],
)
def test_gates(
    gates: list[dict[str, Any]],
    candidate: dict[tuple[str, str], float],
    champion: dict[tuple[str, str], float] | None,
    require_all: bool,
    validated: bool,
    failing: list[str],
) -> None:
    result = validate(spec(gates, require_all), offline(candidate, champion))
    assert result.validated == validated
    assert [f"{c.metric} on slice {c.slice}: {c.reason}" for c in result.failed] == failing
    assert (result.summary() == "; ".join(failing)) or validated


def test_every_slice_of_every_gate_is_checked_once() -> None:
    result = validate(
        spec([{"metric": "auc", "min": 0.5}, {"metric": "latency", "slices": ["us"], "max": 1}]),
        offline(AUC_BOTH | {("latency", "us"): 0.1}),
    )
    assert [(c.metric, c.slice) for c in result.checks] == [
        ("auc", "eu"),
        ("auc", "us"),
        ("latency", "us"),
    ]
    assert result.summary() == "all 3 gate checks pass"


def counted(values: dict[tuple[str, str], tuple[float, int]]) -> list[dict[str, Any]]:
    return [
        {"metric": m, "slice": s, "value": v, "samples": n} for (m, s), (v, n) in values.items()
    ]


def judged(
    gates: list[dict[str, Any]],
    candidate: dict[tuple[str, str], tuple[float, int]],
    champion: dict[tuple[str, str], tuple[float, int]],
) -> list[tuple[str, str, str, bool]]:
    result = validate(
        spec(gates),
        OfflineMetrics.model_validate(
            {"candidate": counted(candidate), "champion": counted(champion)}
        ),
    )
    return [(c.gate, c.slice, c.code.value, c.passed) for c in result.checks]


@pytest.mark.parametrize(
    ("gates", "candidate", "champion", "expected"),
    [
        # The default gate: a repair of the broken slice passes although the other slice
        # is 3 examples in 300 lower — noise.
        (
            [],
            {("auc", "eu"): (0.87, 300), ("auc", "us"): (0.90, 300)},
            {("auc", "eu"): (0.27, 300), ("auc", "us"): (0.91, 300)},
            [
                ("default", "eu", "WithinTolerance", True),
                ("default", "us", "NotSignificant", True),
            ],
        ),
        # The default gate: a real regression on one slice, with enough examples, rejects.
        (
            [],
            {("auc", "eu"): (0.91, 2000), ("auc", "us"): (0.80, 2000)},
            {("auc", "eu"): (0.90, 2000), ("auc", "us"): (0.90, 2000)},
            [
                ("default", "eu", "WithinTolerance", True),
                ("default", "us", "SignificantRegression", False),
            ],
        ),
        # The default gate compares only what the result reports for both.
        (
            [],
            {("auc", "eu"): (0.91, 500), ("latency", "eu"): (0.2, 500)},
            {("auc", "eu"): (0.90, 500)},
            [("default", "eu", "WithinTolerance", True)],
        ),
        # A gate of the spec with a tolerance: judged for noise too, named by its index.
        (
            [{"metric": "auc", "min": 0.5}, {"metric": "auc", "notWorseThan": {"absolute": 0.01}}],
            {("auc", "eu"): (0.88, 300), ("auc", "us"): (0.90, 300)},
            {("auc", "eu"): (0.90, 300), ("auc", "us"): (0.90, 300)},
            [
                ("gates[0]", "eu", "WithinBounds", True),
                ("gates[0]", "us", "WithinBounds", True),
                ("gates[1]", "eu", "NotSignificant", True),
                ("gates[1]", "us", "WithinTolerance", True),
            ],
        ),
        # Values that are not proportions: no noise test, the tolerance holds as given.
        (
            [{"metric": "latency", "notWorseThan": {"absolute": 5}}],
            {("latency", "eu"): (120, 500), ("latency", "us"): (100, 500)},
            {("latency", "eu"): (110, 500), ("latency", "us"): (130, 500)},
            [
                ("gates[0]", "eu", "BeyondTolerance", False),
                ("gates[0]", "us", "WithinTolerance", True),
            ],
        ),
    ],
)
def test_regressions_are_judged_against_noise(
    gates: list[dict[str, Any]],
    candidate: dict[tuple[str, str], tuple[float, int]],
    champion: dict[tuple[str, str], tuple[float, int]],
    expected: list[tuple[str, str, str, bool]],
) -> None:
    assert judged(gates, candidate, champion) == expected


def test_the_default_gate_without_sample_counts_tolerates_no_regression() -> None:
    result = validate(spec([]), offline({("auc", "eu"): 0.89}, {("auc", "eu"): 0.90}))
    assert result.policy == "default"
    assert [(c.code.value, c.passed) for c in result.checks] == [("BeyondTolerance", False)]
    assert (
        result.summary()
        == "auc on slice eu: 0.89 vs champion 0.9: worse by 0.01 > 0 (no regression tolerated)"
    )


def test_the_default_gate_rejects_a_result_it_cannot_compare() -> None:
    result = validate(spec([]), offline({("auc", "eu"): 0.95}))
    assert not result.validated
    assert result.failed[0].code.value == "NoChampionValue"
    assert "cannot compare" in result.summary()


def test_the_status_entry_names_the_gate_the_code_and_the_numbers() -> None:
    result = validate(
        spec([]),
        OfflineMetrics.model_validate(
            {
                "candidate": counted({("auc", "eu"): (0.89, 300)}),
                "champion": counted({("auc", "eu"): (0.90, 300)}),
            }
        ),
    )
    [entry] = [c.to_status() for c in result.checks]
    assert entry["gate"] == "default"
    assert entry["code"] == "NotSignificant"
    assert (entry["candidateSamples"], entry["championSamples"]) == (300, 300)
    assert 0.05 < entry["pValue"] < 1
    assert entry["passed"] is True


def test_only_new_versions_of_a_serving_model_await_judgement() -> None:
    def mv(name: str, phase: str | None = None, role: str | None = None) -> dict[str, Any]:
        labels = {"modelloop.dev/role": role} if role else {}
        status = {"phase": phase} if phase else {}
        return {"metadata": {"name": name, "labels": labels}, "status": status}

    versions = [
        mv("m-v1", "Serving", "stable"),
        mv("m-v2"),  # just made
        mv("m-v3", "Pending"),
        mv("m-v4", "Validated"),
        mv("m-v5", "Rejected"),
        mv("m-v6", "Canary", "canary"),
        mv("m-v7", None, "canary"),  # a role without a phase: chosen already
    ]
    assert [v["metadata"]["name"] for v in awaiting_judgement(versions, "m-v1")] == [
        "m-v2",
        "m-v3",
    ]
    assert awaiting_judgement(versions, None) == []  # bootstrap: nothing to compare with


def paired_rows(
    candidate: dict[str, tuple[float, tuple[int, int]]],
    champion: dict[str, float],
    metric: str = "auc",
    n: int = 300,
) -> OfflineMetrics:
    """Per slice: the candidate's value and (candidateOnly, championOnly); the champion's
    value; both on the same n examples."""
    return OfflineMetrics.model_validate(
        {
            "candidate": [
                {
                    "metric": metric,
                    "slice": s,
                    "value": v,
                    "samples": n,
                    "pairs": {"candidateOnly": gained, "championOnly": lost},
                }
                for s, (v, (gained, lost)) in candidate.items()
            ],
            "champion": [
                {"metric": metric, "slice": s, "value": v, "samples": n}
                for s, v in champion.items()
            ],
        }
    )


def outcomes(gates: list[dict[str, Any]], metrics: OfflineMetrics) -> list[tuple[Any, ...]]:
    result = validate(spec(gates), metrics)
    return [(c.slice, c.test, c.code.value, c.passed) for c in result.checks]


@pytest.mark.parametrize(
    ("pairs_us", "expected_us"),
    [
        # A repaired slice (eu: 0.27 -> 0.87) and one point lower on us, 3 examples of 300,
        # however much the two models disagree there: noise.
        ((0, 3), ("us", "paired", "NotSignificant", True)),
        ((4, 7), ("us", "paired", "NotSignificant", True)),
        ((13, 16), ("us", "paired", "NotSignificant", True)),
        # Five points lower on us: 15 examples worse and none better is no noise.
        ((0, 15), ("us", "paired", "SignificantRegression", False)),
        # Five points lower, but the two disagree on a third of the examples: it may be.
        ((43, 58), ("us", "paired", "NotSignificant", True)),
    ],
)
def test_the_paired_test_judges_a_regression_by_the_examples_the_two_disagree_on(
    pairs_us: tuple[int, int], expected_us: tuple[Any, ...]
) -> None:
    gained, lost = pairs_us
    champion_us = 0.85
    metrics = paired_rows(
        {"eu": (0.87, (186, 6)), "us": (champion_us + (gained - lost) / 300, pairs_us)},
        {"eu": 0.27, "us": champion_us},
    )
    assert outcomes([], metrics) == [("eu", "paired", "WithinTolerance", True), expected_us]


def test_without_pairs_a_five_point_regression_on_300_examples_passes_as_noise() -> None:
    """The two-proportion test on the case the paired test rejects above."""
    metrics = OfflineMetrics.model_validate(
        {
            "candidate": counted({("auc", "eu"): (0.87, 300), ("auc", "us"): (0.80, 300)}),
            "champion": counted({("auc", "eu"): (0.27, 300), ("auc", "us"): (0.85, 300)}),
        }
    )
    assert outcomes([], metrics) == [
        ("eu", "twoProportion", "WithinTolerance", True),
        ("us", "twoProportion", "NotSignificant", True),
    ]


@pytest.mark.parametrize(
    ("tolerance", "candidate_us", "pairs_us", "expected_us"),
    [
        # Within the tolerance as observed: never a regression, whatever the test says.
        ({"absolute": 0.02}, 0.84, (2, 5), ("WithinTolerance", True)),
        # Beyond it by a point, on 300 examples: noise.
        ({"absolute": 0.02}, 0.82, (0, 9), ("NotSignificant", True)),
        # Beyond it by 8 points: significant.
        ({"absolute": 0.02}, 0.75, (0, 30), ("SignificantRegression", False)),
        ({"relative": 0.05}, 0.75, (0, 30), ("SignificantRegression", False)),  # 0.0425
        ({"relative": 0.1}, 0.75, (0, 30), ("NotSignificant", True)),  # 0.085: 1.5 beyond
    ],
)
def test_a_tolerance_is_the_margin_of_the_paired_test(
    tolerance: dict[str, float],
    candidate_us: float,
    pairs_us: tuple[int, int],
    expected_us: tuple[str, bool],
) -> None:
    metrics = paired_rows({"us": (candidate_us, pairs_us)}, {"us": 0.85})
    gates = [{"metric": "auc", "slices": ["us"], "notWorseThan": tolerance}]
    [(_, test, code, passed)] = outcomes(gates, metrics)
    assert (test, code, passed) == ("paired", *expected_us)


@pytest.mark.parametrize(
    ("candidate", "candidate_samples", "champion_samples", "pairs"),
    [
        (0.80, 300, 300, (10, 10)),  # the counts give no difference; the values 0.05
        (0.80, 300, 250, (0, 15)),  # not the same examples
        (1.20, 300, 300, (0, 15)),  # not a proportion
    ],
)
def test_paired_counts_that_do_not_give_the_values_fail_the_check(
    candidate: float, candidate_samples: int, champion_samples: int, pairs: tuple[int, int]
) -> None:
    metrics = OfflineMetrics.model_validate(
        {
            "candidate": [
                {
                    "metric": "auc",
                    "slice": "eu",
                    "value": candidate,
                    "samples": candidate_samples,
                    "pairs": {"candidateOnly": pairs[0], "championOnly": pairs[1]},
                }
            ],
            "champion": [
                {"metric": "auc", "slice": "eu", "value": 0.85, "samples": champion_samples}
            ],
        }
    )
    result = validate(spec([]), metrics)
    assert [(c.test, c.code.value, c.passed, c.p_value) for c in result.checks] == [
        ("paired", "InconsistentPairs", False, None)
    ]
    assert result.summary().startswith(f"auc on slice eu: {candidate:.4g} vs champion 0.85: ")
    assert result.summary().endswith("do not give these values")


def test_lower_is_better_proportions_count_the_candidates_own_examples_as_its_regression() -> None:
    """A lower-is-better proportion (the fixture's latency stands for an error rate):
    candidateOnly are the examples only the candidate gets wrong."""
    metrics = OfflineMetrics.model_validate(
        {
            "candidate": [
                {
                    "metric": "latency",
                    "slice": "eu",
                    "value": 0.20,
                    "samples": 300,
                    "pairs": {"candidateOnly": 16, "championOnly": 1},
                }
            ],
            "champion": [{"metric": "latency", "slice": "eu", "value": 0.15, "samples": 300}],
        }
    )
    [check] = validate(spec([]), metrics).checks
    assert check.code.value == "SignificantRegression"
    assert check.regression == pytest.approx(0.05)
    assert (check.p_value or 1.0) < 1e-3


def test_the_status_entry_names_the_test_the_numbers_and_the_decision() -> None:
    metrics = paired_rows({"us": (0.80, (0, 15))}, {"us": 0.85})
    [check] = validate(spec([]), metrics).checks
    entry = check.to_status()
    numbers = ("pValue", "regression", "level", "reason")
    assert {k: v for k, v in entry.items() if k not in numbers} == {
        "gate": "default",
        "metric": "auc",
        "slice": "us",
        "candidate": 0.80,
        "champion": 0.85,
        "candidateSamples": 300,
        "championSamples": 300,
        "pairs": {"candidateOnly": 0, "championOnly": 15},
        "limit": 0.0,
        "test": "paired",
        "passed": False,
        "code": "SignificantRegression",
    }
    assert entry["pValue"] == pytest.approx(0.5**16)  # mid-p: P(X = 15) / 2 of 15 pairs
    assert (entry["regression"], entry["level"]) == pytest.approx((0.05, 0.05))
    assert entry["reason"] == (
        "0.8 vs champion 0.85: worse by 0.05 > 0 (no regression tolerated) (paired: 0 "
        "examples only the candidate counts, 15 only the champion, of 300; p = 1.53e-05, "
        "Holm level 0.05; significant)"
    )
    assert GateCheck.model_validate(entry).test == "paired"


EU_AUC = MetricSlice(metric="auc", slice="eu")
US_LATENCY = MetricSlice(metric="latency", slice="us")


@pytest.mark.parametrize(
    ("failing", "candidate", "champion", "expected"),
    [
        # Better where the breach was, not worse elsewhere: validated.
        ([EU_AUC], {("auc", "eu"): 0.80}, {("auc", "eu"): 0.60}, [("Repaired", True)]),
        # Not worse, but no better: the breach would stay.
        ([EU_AUC], {("auc", "eu"): 0.60}, {("auc", "eu"): 0.60}, [("NotRepaired", False)]),
        # Lower is better: better means lower.
        (
            [US_LATENCY],
            {("latency", "us"): 0.2},
            {("latency", "us"): 0.3},
            [("Repaired", True)],
        ),
        # The trainer did not report the breached slice: nothing shows the repair.
        ([EU_AUC], {("auc", "us"): 0.9}, {("auc", "us"): 0.9}, [("NoCandidateValue", False)]),
        ([EU_AUC], {("auc", "eu"): 0.9}, {}, [("NoChampionValue", False)]),
        # A metric no longer in the spec asks for nothing.
        ([MetricSlice(metric="gone", slice="eu")], AUC_BOTH, CHAMPION, []),
    ],
)
def test_a_candidate_must_do_better_where_its_breach_was(
    failing: list[MetricSlice],
    candidate: dict[tuple[str, str], float],
    champion: dict[tuple[str, str], float],
    expected: list[tuple[str, bool]],
) -> None:
    gates = [{"metric": "auc", "min": 0}]
    result = validate(spec(gates), offline(candidate, champion), failing)
    repairs = [(c.code.value, c.passed) for c in result.checks if c.gate == "repair"]
    assert repairs == expected


def test_a_repair_that_also_regresses_elsewhere_within_noise_passes() -> None:
    """The issue's case: the slice that broke is repaired (0.27 -> 0.87), the others move
    by noise; with the default gate and the repair check it is Validated."""
    result = validate(
        spec([]),
        OfflineMetrics.model_validate(
            {
                "candidate": counted({("auc", "eu"): (0.87, 300), ("auc", "us"): (0.89, 300)}),
                "champion": counted({("auc", "eu"): (0.27, 300), ("auc", "us"): (0.90, 300)}),
            }
        ),
        [EU_AUC],
    )
    assert result.validated
    assert [(c.gate, c.slice, c.code.value) for c in result.checks] == [
        ("default", "eu", "WithinTolerance"),
        ("default", "us", "NotSignificant"),
        ("repair", "eu", "Repaired"),
    ]
    assert result.checks[-1].reason == (
        "0.87 vs champion 0.27: better where the breach that started the training was"
    )


def test_status_entries_are_unique_by_gate_metric_and_slice() -> None:
    """status.gates is a map keyed by gate, metric and slice: two gates on one metric and
    the repair check on a breached slice must not collide (the API server refuses a
    duplicate key, and with it the whole verdict)."""
    gates: list[dict[str, Any]] = [
        {"metric": "auc", "min": 0.5},
        {"metric": "auc", "notWorseThan": {"absolute": 0.1}},
    ]
    result = validate(spec(gates), offline(AUC_BOTH, CHAMPION), [EU_AUC])
    keys = [(e["gate"], e["metric"], e["slice"]) for e in (c.to_status() for c in result.checks)]
    assert len(keys) == len(set(keys)) == 5
    for entry in (c.to_status() for c in result.checks):
        GateCheck.model_validate(entry)

"""The offline gate on tables of candidates and champions."""

from typing import Any

import pytest

from modelloop.api.model import ModelSpec
from modelloop.api.modelversion import OfflineMetrics
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

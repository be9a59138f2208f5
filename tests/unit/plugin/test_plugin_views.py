"""What `kubectl modelloop` prints, from objects: tables, rows, what undo pins."""

from typing import Any

import pytest

from modelloop.plugin import views

MODEL: dict[str, Any] = {
    "metadata": {"name": "churn"},
    "spec": {"rollout": {"steps": [{"weight": 10}, {"weight": 50}, {"weight": 100}]}},
    "status": {
        "phase": "Progressing",
        "stableVersion": "churn-v1",
        "canary": {
            "version": "churn-v2",
            "weight": 50,
            "step": 1,
            "phase": "WaitingForApproval",
            "analysis": [
                {
                    "metric": "accuracy",
                    "slice": "web",
                    "outcome": "pass",
                    "stable": 0.84,
                    "canary": 0.91,
                    "code": "NotSignificant",
                    "reason": "canary 0.91 vs stable 0.84",
                },
            ],
        },
        "verdicts": [
            {
                "metric": "accuracy",
                "slice": "web",
                "version": "churn-v1",
                "verdict": "breach",
                "value": 0.61234,
                "samples": 412,
                "reason": "below min 0.8",
            },
            {
                "metric": "accuracy",
                "slice": "mobile",
                "version": "churn-v1",
                "verdict": "pass",
                "value": 0.9,
                "samples": None,
            },
        ],
    },
}


def version(name: str, phase: str, when: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": when},
        "spec": {"lineage": {"baseVersion": "x", "trigger": {"kind": "breach"}}},
        "status": {"phase": phase, "lastTransitionTime": when, "reason": "Promoted"},
    }


def test_the_model_row_shows_stable_canary_weight_and_step() -> None:
    assert views.model_row(MODEL) == [
        "churn",
        "Progressing",
        "churn-v1",
        "churn-v2",
        "50%",
        "2/3",
        "WaitingForApproval",
    ]
    assert views.model_row({"metadata": {"name": "new"}}) == ["new", "-", "-", "-", "-", "-", "-"]


def test_verdicts_sorted_with_values_and_reasons() -> None:
    assert views.verdict_rows(MODEL) == [
        ["accuracy", "mobile", "churn-v1", "pass", "0.9", "-", ""],
        ["accuracy", "web", "churn-v1", "breach", "0.6123", "412", "below min 0.8"],
    ]
    assert views.analysis_rows(MODEL) == [
        ["accuracy", "web", "pass", "0.84", "0.91", "NotSignificant", "canary 0.91 vs stable 0.84"]
    ]


def test_a_table_aligns_its_columns_and_bolds_only_on_a_terminal() -> None:
    plain = views.table(("A", "LONGER"), [["xyz", "1"], ["", "22"]])
    assert plain.splitlines() == ["A     LONGER", "xyz   1", "      22"]
    assert views.table(("A",), [], bold=True) == "\033[1mA\033[0m"


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([], None),
        ([version("churn-v0", "Retired", "2026-11-01T00:00:00Z")], "churn-v0"),
        ([version("churn-v1", "Retired", "2026-11-01T00:00:00Z")], None),  # it is stable
        (
            [
                version("churn-v1", "Retired", "2026-11-01T00:00:00Z"),
                version("churn-v2", "Retired", "2026-11-02T00:00:00Z"),
                version("churn-v3", "RolledBack", "2026-11-03T00:00:00Z"),
            ],
            "churn-v2",
        ),
    ],
)
def test_undo_pins_the_newest_retired_version(
    versions: list[dict[str, Any]], expected: str | None
) -> None:
    assert views.previous_version(MODEL, versions) == expected


def test_history_is_in_creation_order_with_lineage() -> None:
    rows = views.history_rows(
        [
            version("b", "Serving", "2026-11-02T00:00:00Z"),
            version("a", "Retired", "2026-11-01T00:00:00Z"),
        ]
    )
    assert [r[:5] for r in rows] == [
        ["a", "Retired", "2026-11-01T00:00:00Z", "x", "breach"],
        ["b", "Serving", "2026-11-02T00:00:00Z", "x", "breach"],
    ]


def test_the_gate_table_shows_each_check_with_its_examples_test_and_code() -> None:
    judged = {
        "metadata": {"name": "churn-v3", "creationTimestamp": "2026-11-03T00:00:00Z"},
        "status": {
            "phase": "Rejected",
            "gates": [
                {
                    "gate": "default",
                    "metric": "accuracy",
                    "slice": "web",
                    "candidate": 0.8,
                    "candidateSamples": 2000,
                    "champion": 0.9,
                    "championSamples": 2000,
                    "test": "paired",
                    "pValue": 1e-12,
                    "passed": False,
                    "code": "SignificantRegression",
                },
                {"metric": "accuracy", "slice": "mobile", "candidate": 0.9, "passed": True},
            ],
        },
    }
    assert views.gate_rows(judged) == [
        [
            "default",
            "accuracy",
            "web",
            "0.8 (2000)",
            "0.9 (2000)",
            "paired",
            "1e-12",
            "FAIL",
            "SignificantRegression",
        ],
        ["-", "accuracy", "mobile", "0.9", "-", "-", "-", "pass", "-"],
    ]
    older = {
        "metadata": {"name": "churn-v2", "creationTimestamp": "2026-11-02T00:00:00Z"},
        "status": {"phase": "Validated"},
    }
    serving = {
        "metadata": {"name": "churn-v4", "creationTimestamp": "2026-11-04T00:00:00Z"},
        "status": {"phase": "Serving"},
    }
    assert views.last_judged([older, judged, serving]) is judged
    assert views.last_judged([serving]) is None

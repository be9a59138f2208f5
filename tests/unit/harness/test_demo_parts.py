"""The demo's pure parts: how it labels decisions, when it says the loop closed, and the
pods it refuses to run (localcluster/demo)."""

from pathlib import Path

import pytest
from localcluster.demo.loop import Outcome, label
from localcluster.demo.pods import run_container
from localcluster.demo.timeline import Mark
from localcluster.traffic import Stats

TRAFFIC = Stats(10.0, {"churn-v1": 60, "churn-v2": 40}, {"churn-v2": 1}, 0, 0, 0, None)


def mark(at: float, reason: str, message: str = "") -> Mark:
    return Mark(at, "operator", reason, message)


@pytest.mark.parametrize(
    ("reason", "message", "expected"),
    [
        ("WeightChanged", "churn-v2: weight 0% → 10% (step 1 of 3)", "10%"),
        ("StepAdvanced", "churn-v2 passed step 1 (10%): weight → 50% (step 2 of 3)", "50%"),
        ("Promoted", "churn-v2 promoted: it replaces churn-v1 at 100%", "promoted"),
        ("ConceptShift", "the concept of mobile turns", "drift"),
    ],
)
def test_the_plot_labels_a_step_by_its_new_weight(reason: str, message: str, expected: str) -> None:
    assert label(mark(1.0, reason, message)) == expected


def outcome(end: dict[str, float]) -> Outcome:
    moments = {"drift": mark(40, "ConceptShift"), "promoted": mark(90, "Promoted", "done")}
    accuracy = {"before the drift": {"mobile": 0.84, "web": 0.85}, "at the end": end}
    return Outcome("churn-v2", moments, accuracy, TRAFFIC, Path("demo.png"))


@pytest.mark.parametrize(
    ("end", "problems"),
    [
        ({"mobile": 0.83, "web": 0.85}, []),
        (
            {"mobile": 0.6, "web": 0.85},
            ["accuracy on mobile at the end is 0.600, under the objective 0.75"],
        ),
        ({"web": 0.85}, ["no accuracy on mobile at the end"]),
    ],
)
def test_the_loop_closed_only_when_every_slice_is_back_above_its_objective(
    end: dict[str, float], problems: list[str]
) -> None:
    assert outcome(end).problems() == problems


def test_the_summary_gives_the_time_to_close_the_accuracy_and_the_traffic() -> None:
    text = outcome({"mobile": 0.83, "web": 0.85}).summary()
    assert text.startswith("The loop closed 50 s after the drift: churn-v2 serves all traffic.")
    assert "\n  mobile                     0.840                   0.830" in text
    assert "100 requests answered (churn-v1 60, churn-v2 40), 1 failed" in text


@pytest.mark.parametrize(
    ("container", "reason"),
    [
        ({"image": "registry.invalid/x:1"}, "image registry.invalid/x:1 is not available"),
        (
            {
                "image": "ghcr.io/modelloop-examples/trainer:0.1",
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
            },
            "env from references is not supported here: ['TOKEN']",
        ),
    ],
)
def test_a_pod_the_demo_cannot_run_fails_with_the_reason(
    container: dict[str, object], reason: str, tmp_path: Path
) -> None:
    exit_ = run_container(container, tmp_path, "pod")
    assert exit_.code == 1
    assert exit_.message.startswith(reason)

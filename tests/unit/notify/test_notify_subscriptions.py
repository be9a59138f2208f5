"""Which kind each Event is, and which receivers subscribed to it."""

from typing import Any, Literal, get_args

import pytest

from modelloop.api.model import NotificationEvent, NotificationReceiver
from modelloop.notify.subscriptions import REASONS, kind_of, recipients

URL = {"secretKeyRef": {"name": "hook", "key": "url"}}


def receiver(name: str, events: list[str] | None = None) -> NotificationReceiver:
    spec: dict[str, Any] = {"name": name, "type": "webhook", "urlFrom": URL}
    if events is not None:
        spec["events"] = events
    return NotificationReceiver.model_validate(spec)


@pytest.mark.parametrize(
    ("reason", "type_", "kind"),
    [
        ("Breach", "Warning", "breach"),
        ("BreachPending", "Warning", "breachPending"),
        ("Recovered", "Normal", "recovered"),
        ("Inconclusive", "Warning", "inconclusive"),
        ("WaitingForLabels", "Normal", "waitingForLabels"),
        ("TrainingStarted", "Normal", "trainingStarted"),
        ("TrainingSucceeded", "Normal", "trainingFinished"),
        ("TrainingFailed", "Warning", "trainingFinished"),
        ("TriggerBackoff", "Warning", "trainingBackoff"),
        ("Validated", "Normal", "validated"),
        ("Rejected", "Warning", "rejected"),
        ("RolloutStarted", "Normal", "rolloutStarted"),
        ("RolloutRestarted", "Normal", "rolloutStarted"),
        ("WeightChanged", "Normal", "canaryStep"),
        ("StepAdvanced", "Normal", "canaryStep"),
        ("WaitingForApproval", "Normal", "waitingForApproval"),
        ("WaitingForConfirmation", "Normal", "waitingForApproval"),  # a webhook gate's yes
        ("RolloutPaused", "Warning", "paused"),
        ("Promoted", "Normal", "promoted"),
        ("RolledBack", "Warning", "rolledBack"),
        ("EarlyRollback", "Warning", "earlyRollback"),
        ("EarlyRollbackReversed", "Normal", "earlyRollback"),
        ("TrafficWriteFailed", "Warning", "fault"),
        ("EvaluationFailed", "Warning", "fault"),
        ("InvalidSpec", "Warning", "fault"),
        ("SomeWarningAddedLater", "Warning", "fault"),  # a Warning is never lost
        ("Created", "Normal", None),  # a Deployment made: mechanics, not news
        ("VersionExpired", "Normal", None),
        ("TrainingAdopted", "Normal", None),
    ],
)
def test_kind_of_each_event(
    reason: str, type_: Literal["Normal", "Warning"], kind: str | None
) -> None:
    assert kind_of(reason, type_) == kind


@pytest.mark.parametrize(
    ("evidence", "kind"),
    [
        ({"verdicts": [{"metric": "precision", "verdict": "pass", "was": "breach"}]}, "recovered"),
        ({"verdicts": []}, None),  # the first verdicts after inconclusive data: no recovery
        (None, "recovered"),
    ],
)
def test_a_recovery_is_the_end_of_a_breach(
    evidence: dict[str, Any] | None, kind: str | None
) -> None:
    assert kind_of("Recovered", "Normal", evidence) == kind


def test_every_kind_a_receiver_may_name_has_reasons() -> None:
    assert set(REASONS) == set(get_args(NotificationEvent))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("breach", ["defaults", "breaches"]),
        ("rejected", ["defaults", "training"]),
        ("trainingStarted", ["training"]),  # progress is not in the defaults
        ("canaryStep", []),
        ("inconclusive", []),  # nor what a Prometheus blip makes
        ("fault", ["defaults"]),
        (None, []),
    ],
)
def test_recipients_are_those_subscribed(
    kind: NotificationEvent | None, expected: list[str]
) -> None:
    receivers = [
        receiver("defaults"),
        receiver("breaches", ["breach"]),
        receiver("training", ["trainingStarted", "trainingFinished", "validated", "rejected"]),
    ]
    assert [r.name for r in recipients(receivers, kind)] == expected


def test_the_default_subscription_is_the_outcomes_and_what_waits_for_a_person() -> None:
    assert receiver("x").events == [
        "breach",
        "recovered",
        "trainingFinished",
        "validated",
        "rejected",
        "promoted",
        "rolledBack",
        "earlyRollback",
        "paused",
        "waitingForApproval",
        "fault",
    ]

"""The notifier: an Event about a Model becomes one delivery per subscribed receiver,
the operator's and the Model's, each URL read from its Secret in the right namespace."""

import base64
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelloop.api.gvr import Resource
from modelloop.kube.rest import KubeError
from modelloop.notify.delivery import Delivery, DeliveryError
from modelloop.notify.notifier import Notifier
from modelloop.notify.settings import NotificationSettings

Obj = dict[str, Any]


class FakeKube:
    def __init__(self, secrets: dict[tuple[str, str], Obj] | None = None) -> None:
        self.secrets = secrets or {}
        self.refuse = False

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        assert resource.plural == "secrets"
        if self.refuse:
            raise KubeError(403, "Forbidden", f'secrets "{name}" is forbidden')
        return self.secrets.get((namespace or "", name))


class Captured:
    def __init__(self) -> None:
        self.submitted: list[Delivery] = []

    def submit(self, delivery: Delivery) -> None:
        self.submitted.append(delivery)


def receiver(name: str, type_: str, secret: str, events: list[str] | None = None) -> Obj:
    spec: Obj = {
        "name": name,
        "type": type_,
        "urlFrom": {"secretKeyRef": {"name": secret, "key": "url"}},
    }
    return spec | ({"events": events} if events is not None else {})


MODEL = {
    "apiVersion": "modelloop.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "fraud", "namespace": "risk", "uid": "u1"},
    "spec": {
        "notifications": [
            receiver("team", "slack", "team-slack"),
            receiver("audit", "webhook", "audit-hook", ["trainingStarted"]),
        ]
    },
}


def event(reason: str, type_: str = "Normal") -> Obj:
    return {
        "metadata": {"name": "fraud.1", "namespace": "risk"},
        "involvedObject": {
            "apiVersion": "modelloop.dev/v1alpha1",
            "kind": "Model",
            "name": "fraud",
            "namespace": "risk",
            "uid": "u1",
        },
        "reason": reason,
        "message": f"{reason} happened",
        "type": type_,
        "firstTimestamp": "2026-05-01T10:00:00Z",
    }


def notifier(
    kube: FakeKube | None = None, settings: Obj | None = None
) -> tuple[Notifier, Captured]:
    parsed = NotificationSettings.model_validate(settings or {})
    made = Notifier(kube or FakeKube(), parsed, "modelloop-system", CollectorRegistry())  # type: ignore[arg-type]
    captured = Captured()
    made.dispatcher = captured  # type: ignore[assignment]
    return made, captured


OPERATORS = {"receivers": [receiver("platform", "teams", "platform-teams", ["breach", "promoted"])]}


@pytest.mark.parametrize(
    ("reason", "type_", "expected"),
    [
        # (receiver key, type, Secret namespace and name)
        (
            "Breach",
            "Warning",
            [
                (("", "", "platform"), "teams", ("modelloop-system", "platform-teams")),
                (("risk", "fraud", "team"), "slack", ("risk", "team-slack")),
            ],
        ),
        (
            "TrainingStarted",
            "Normal",
            [(("risk", "fraud", "audit"), "webhook", ("risk", "audit-hook"))],
        ),
        (
            "Promoted",
            "Normal",
            [
                (("", "", "platform"), "teams", ("modelloop-system", "platform-teams")),
                (("risk", "fraud", "team"), "slack", ("risk", "team-slack")),
            ],
        ),
        ("StepAdvanced", "Normal", []),  # nobody subscribed to canaryStep
        ("Created", "Normal", []),  # no notification at all
    ],
)
def test_an_event_goes_to_each_receiver_subscribed(
    reason: str, type_: str, expected: list[tuple[Any, str, tuple[str, str]]]
) -> None:
    made, captured = notifier(settings=OPERATORS)
    made.notify(event(reason, type_), MODEL, None)
    assert [(d.receiver, d.type, d.secret[:2]) for d in captured.submitted] == expected
    for d in captured.submitted:
        assert d.describe.startswith(f"{reason} of risk/fraud to ")


def test_each_receiver_gets_its_own_format_with_the_evidence() -> None:
    made, captured = notifier(settings=OPERATORS)
    evidence = {
        "verdicts": [{"metric": "precision", "slice": "us", "version": "v1", "verdict": "breach"}]
    }
    made.notify(event("Breach", "Warning"), MODEL, evidence)
    teams, slack = (json.loads(d.body) for d in captured.submitted)
    assert teams["type"] == "message"
    assert "blocks" in slack
    made.notify(event("TrainingStarted"), MODEL, {"training": {"sequence": 2, "job": "j"}})
    webhook = json.loads(captured.submitted[-1].body)
    assert webhook["evidence"] == {"training": {"sequence": 2, "job": "j"}}
    assert webhook["object"]["kubectl"] == "kubectl get model -n risk fraud"


def test_invalid_model_receivers_leave_the_operators() -> None:
    made, captured = notifier(settings=OPERATORS)
    broken = MODEL | {"spec": {"notifications": [{"name": "x", "type": "pager"}]}}
    made.notify(event("Breach", "Warning"), broken, None)
    assert [d.receiver for d in captured.submitted] == [("", "", "platform")]


def test_events_about_other_objects_are_not_notified() -> None:
    made, captured = notifier(settings=OPERATORS)
    made.notify(event("Breach", "Warning"), MODEL | {"kind": "ModelVersion"}, None)
    assert captured.submitted == []


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_url_is_read_from_the_secret_at_each_attempt() -> None:
    kube = FakeKube({("risk", "hook"): {"data": {"url": encoded("http://hooks.example/x\n")}}})
    made, _ = notifier(kube)
    assert made._url("risk", "hook", "url") == "http://hooks.example/x"
    kube.secrets[("risk", "hook")] = {"data": {"url": encoded("http://hooks.example/rotated")}}
    assert made._url("risk", "hook", "url") == "http://hooks.example/rotated"


@pytest.mark.parametrize(
    ("secrets", "refuse", "detail"),
    [
        ({}, False, "Secret risk/hook not found"),
        (
            {("risk", "hook"): {"data": {"other": encoded("x")}}},
            False,
            "Secret risk/hook has no key url",
        ),
        ({}, True, "Secret risk/hook: Forbidden"),
    ],
)
def test_a_secret_that_cannot_be_read_fails_the_attempt_naming_it(
    secrets: dict[tuple[str, str], Obj], refuse: bool, detail: str
) -> None:
    kube = FakeKube(secrets)
    kube.refuse = refuse
    made, _ = notifier(kube)
    with pytest.raises(DeliveryError) as raised:
        made._url("risk", "hook", "url")
    assert (raised.value.kind, raised.value.detail, raised.value.retryable) == (
        "secret",
        detail,
        True,
    )

"""Webhook gates asked over real HTTP on the loopback: what each answer, or its absence,
becomes; a URL from a Secret; all hooks asked at once."""

import base64
from typing import Any

import pytest
from tests.harness.receiver import Reply, receiving

from modelloop.api.model import Webhook
from modelloop.kube.rest import KubeError, Obj, Resource
from modelloop.rollout.hookcalls import ask, ask_all
from modelloop.rollout.hooks import HookOutcome


class Secrets:
    """Plays the API server for the one read the hooks make."""

    def __init__(self, data: dict[str, dict[str, str]], fail: bool = False) -> None:
        self.data = data
        self.fail = fail

    def get(self, resource: Resource, namespace: str | None, name: str) -> Obj | None:
        if self.fail:
            raise KubeError(403, "Forbidden", "secrets is forbidden")
        found = self.data.get(name)
        if found is None:
            return None
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in found.items()}}


def hook(**fields: Any) -> Webhook:
    return Webhook.model_validate({"name": "gate", "type": "rollout", **fields})


@pytest.mark.parametrize(
    ("reply", "outcome", "status", "detail"),
    [
        (Reply(200, {"ok": True}), HookOutcome.PASS, 200, '{"ok": true}'),
        (Reply(204), HookOutcome.PASS, 204, ""),
        (Reply(409, {"reason": "kpi down 3%"}), HookOutcome.FAIL, 409, '{"reason": "kpi down 3%"}'),
        (Reply(503), HookOutcome.FAIL, 503, "null"),
        (Reply(delay=3.0), HookOutcome.TIMEOUT, None, "no answer within 1s"),
    ],
)
def test_an_answer_becomes_an_outcome(
    reply: Reply, outcome: HookOutcome, status: int | None, detail: str
) -> None:
    with receiving(reply) as receiver:
        answer = ask(Secrets({}), "ns", hook(url=receiver.url + "/gate", timeout="1s"), {"x": 1})
    assert (answer.outcome, answer.status, answer.detail) == (outcome, status, detail)
    assert [(r.path, r.body) for r in receiver.received] == [("/gate", {"x": 1})]


def test_no_connection_is_an_error_not_a_failure() -> None:
    with receiving() as receiver:
        url = receiver.url
    answer = ask(Secrets({}), "ns", hook(url=url), {})
    assert answer.outcome == HookOutcome.ERROR


def test_a_url_from_a_secret_is_read_at_each_call() -> None:
    ref = {"urlFrom": {"secretKeyRef": {"name": "kpi", "key": "url"}}}
    with receiving() as receiver:
        secrets = Secrets({"kpi": {"url": receiver.url + "/t0k3n\n"}})
        assert ask(secrets, "ns", hook(**ref), {}).outcome == HookOutcome.PASS
        assert receiver.received[0].path == "/t0k3n"
    missing = ask(Secrets({"kpi": {}}), "ns", hook(**ref), {})
    assert (missing.outcome, missing.detail) == (HookOutcome.ERROR, "Secret kpi has no key url")
    refused = ask(Secrets({}, fail=True), "ns", hook(**ref), {})
    assert refused.outcome == HookOutcome.ERROR
    assert refused.detail.startswith("Secret kpi could not be read")


def test_hooks_are_asked_at_once_the_slowest_bounds_the_wait() -> None:
    with receiving(Reply(delay=0.5)) as receiver:
        hooks = [hook(name=f"h{i}", url=receiver.url + f"/{i}", timeout="5s") for i in range(4)]
        answers = ask_all(Secrets({}), "ns", hooks, lambda h: {"hook": h.name})
    assert {name: a.outcome for name, a in answers.items()} == {
        f"h{i}": HookOutcome.PASS for i in range(4)
    }
    assert receiver.most_at_once == 4  # all four were waiting on their answers together
    assert sorted(r.body["hook"] for r in receiver.received) == ["h0", "h1", "h2", "h3"]

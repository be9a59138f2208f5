"""Waiting for a complete discovery before kopf resolves what the operator watches."""

from typing import Any

from modelloop.kube import discovery
from modelloop.kube.rest import KubeError

COMPLETE = {
    "/apis": {"groups": [{"name": g} for g in ("apps", "batch", "modelloop.dev")]},
    "/apis/modelloop.dev/v1alpha1": {
        "resources": [{"name": n} for n in ("models", "modelversions", "metrictemplates")]
    },
    "/apis/apps/v1": {"resources": [{"name": "deployments"}]},
    "/apis/batch/v1": {"resources": [{"name": "jobs"}]},
    "/api/v1": {"resources": [{"name": "pods"}, {"name": "services"}]},
}


class Discovery:
    """An API server whose discovery answers come from a list of states, one per poll."""

    def __init__(self, *states: dict[str, Any] | None) -> None:
        self.states = list(states)
        self.polls = 0

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        state = self.states[min(self.polls, len(self.states) - 1)]
        if state is None:
            raise KubeError(503, "ServiceUnavailable", "starting")
        return dict(state.get(path) or {})

    def next_poll(self) -> None:
        self.polls += 1


def test_a_just_started_api_server_listing_one_group_is_not_complete() -> None:
    partial = {**COMPLETE, "/apis": {"groups": [{"name": "apps"}]}}
    assert discovery.missing_resources(Discovery(partial)) == [
        "modelloop.dev/models",
        "modelloop.dev/modelversions",
        "modelloop.dev/metrictemplates",
        "batch/jobs",
    ]
    assert discovery.missing_resources(Discovery(COMPLETE)) == []
    down = discovery.missing_resources(Discovery(None))
    assert down[0].startswith("discovery unavailable: 503")


def test_the_wait_ends_once_discovery_is_complete(monkeypatch: Any) -> None:
    api = Discovery(None, {**COMPLETE, "/apis": {"groups": []}}, COMPLETE)
    monkeypatch.setattr("time.sleep", lambda _: api.next_poll())
    assert discovery.wait_for_discovery(api, timeout=60) is True
    assert api.polls == 2


def test_the_wait_gives_up_at_its_deadline(monkeypatch: Any) -> None:
    api = Discovery(None)
    clock = iter(range(1000))
    monkeypatch.setattr("time.monotonic", lambda: float(next(clock)))
    monkeypatch.setattr("time.sleep", lambda _: None)
    assert discovery.wait_for_discovery(api, timeout=5) is False

"""A fault stays with the provider or the Model it concerns: a provider with a missing CA
file, one that refuses connections and one that never answers leave a Model on a
healthy provider evaluated on time; a refused status write of one Model is said on
that Model while the others are concluded."""

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.controlplane import ControlPlane
from localcluster.processes import free_port
from localcluster.waiting import wait_for
from tests.harness.admission import deny_operator_writes
from tests.harness.world import (
    BAD,
    GOOD,
    PRECISION,
    World,
    create_served_model,
    sample,
    slices,
    traffic,
)

from modelloop.api.resources import MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import EVENTS, Kube

SILENT_TIMEOUT = 20  # seconds: a cycle that waited for this provider would be this late


@pytest.fixture
def silent() -> Iterator[str]:
    """The URL of an endpoint that accepts connections and never answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(64)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"


def add_model(kube: Kube, namespace: str, name: str, provider: str) -> None:
    """Another Model like the World's, on ``provider``, with its first version."""
    spec = {"slices": slices("eu"), "metrics": [PRECISION], "metricsProvider": provider}
    create_served_model(kube, namespace, name, spec)


def status(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return (kube.get(MODELS, namespace, name) or {}).get("status") or {}


def verdict(kube: Kube, namespace: str, name: str) -> tuple[str, str]:
    found = status(kube, namespace, name).get("verdicts") or [{}]
    return found[0].get("verdict", ""), found[0].get("reason", "")


def unavailable(kube: Kube, namespace: str, name: str) -> tuple[str, str, str]:
    conditions = status(kube, namespace, name).get("conditions") or []
    found: dict[str, Any] = next((c for c in conditions if c["type"] == "MetricsUnavailable"), {})
    return found.get("status", ""), found.get("reason", ""), found.get("message", "")


def events(kube: Kube, namespace: str, name: str, reason: str) -> list[str]:
    return [
        e["message"]
        for e in kube.list(EVENTS, namespace)
        if e["reason"] == reason and e["involvedObject"]["name"] == name
    ]


def test_broken_providers_leave_a_model_on_a_healthy_one_on_time(
    world: Callable[..., World], kube: Kube, namespace: str, tmp_path: Path, silent: str
) -> None:
    absent_ca = tmp_path / "absent-ca.crt"
    w = world(
        {"slices": slices("eu"), "metrics": [PRECISION]},
        traffic({"eu": GOOD}),
        providers=[
            {
                "name": "nocert",
                "url": f"https://127.0.0.1:{free_port()}",
                "tls": {"caFile": str(absent_ca)},
            },
            {"name": "refused", "url": f"http://127.0.0.1:{free_port()}"},
            {"name": "silent", "url": silent, "timeout": f"{SILENT_TIMEOUT}s"},
        ],
    )
    for name in ("nocert", "refused", "silent"):
        add_model(kube, namespace, name, name)
    w.await_verdicts({"precision/eu": "pass"})

    wait_for(
        lambda: unavailable(kube, namespace, "nocert")[:2] == ("True", "ProviderUnusable"),
        60,
        "the provider without its CA file unusable",
    )
    assert unavailable(kube, namespace, "nocert")[2] == (
        f"provider nocert: tls.caFile {absent_ca} cannot be read: No such file or directory"
    )
    assert verdict(kube, namespace, "nocert")[0] == "inconclusive"
    wait_for(
        lambda: "unreachable" in verdict(kube, namespace, "refused")[1],
        60,
        "the refusing provider unreachable",
    )
    assert unavailable(kube, namespace, "refused")[:2] == ("True", "QueryFailed")
    metrics = w.operator_metrics()
    tries = sample(
        metrics, "modelloop_prometheus_request_duration_seconds_count", provider="refused"
    )
    spent = sample(metrics, "modelloop_prometheus_request_duration_seconds_sum", provider="refused")
    assert tries
    assert spent is not None
    assert spent / tries < 0.5, "a refused connection is not tried again"

    # While the silent provider holds its lane for 20 s at a time, the healthy Model's
    # verdict follows its data within a few evaluations.
    w.exporter.update(traffic({"eu": BAD}))
    flipped = time.monotonic()
    w.await_verdicts({"precision/eu": "breach"}, timeout=60)
    took = time.monotonic() - flipped
    print(f"breach {took:.1f} s after the data turned bad")
    assert took < SILENT_TIMEOUT / 2
    wait_for(
        lambda: f"timed out after {SILENT_TIMEOUT}s" in verdict(kube, namespace, "silent")[1],
        3 * SILENT_TIMEOUT,
        "the silent provider timed out",
    )
    assert w.operator.running
    assert "evaluation cycle" not in w.operator.log_text()


def test_a_refused_status_write_is_that_models_fault_alone(
    world: Callable[..., World], kube: Kube, namespace: str, control_plane: ControlPlane
) -> None:
    both = [*traffic({"eu": GOOD})["counters"], *traffic({"eu": GOOD}, "other-v1")["counters"]]
    w = world({"slices": slices("eu"), "metrics": [PRECISION]}, {"counters": both})
    add_model(kube, namespace, "other", "test")
    w.await_verdicts({"precision/eu": "pass"})
    wait_for(lambda: verdict(kube, namespace, "other")[0] == "pass", 60, "the other's verdict")

    rule = {
        "apiGroups": [GROUP],
        "apiVersions": [VERSION],
        "resources": ["models/status"],
        "operations": ["UPDATE"],
        "resourceNames": ["other"],
    }
    held = "the test holds this status"
    with deny_operator_writes(control_plane, "hold-other-status", [rule], held):
        bad = [*traffic({"eu": BAD})["counters"], *traffic({"eu": BAD}, "other-v1")["counters"]]
        w.exporter.update({"counters": bad})
        w.await_verdicts({"precision/eu": "breach"})
        [failed] = wait_for(
            lambda: events(kube, namespace, "other", "EvaluationFailed"),
            60,
            "the refused write said on the Model",
        )
        assert failed.startswith("evaluation failed: "), failed
        assert held in failed, failed
        assert verdict(kube, namespace, "other")[0] == "pass"
        assert f"evaluation of {namespace}/other failed" in w.operator.log_text()

    wait_for(lambda: verdict(kube, namespace, "other")[0] == "breach", 60, "the write taken")
    assert len(events(kube, namespace, "other", "EvaluationFailed")) == 1, "said once"

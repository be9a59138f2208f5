"""Notifications on the real control plane: a local HTTP receiver gets the notifications
of a whole loop (breach → training → validation → canary → promotion) in order, with
the numbers; a receiver that never answers delays nothing and is counted as failed.
Also: one delivery attempt against real HTTP answers, and the chart's RBAC for the
Secrets Models name."""

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster.apply import apply
from localcluster.chart import OPERATOR_NAMESPACE, render
from localcluster.exporter import Exporter
from localcluster.kubelet import TRAINING_JOB, finish_running_training
from localcluster.processes import Process
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.waiting import wait_for
from tests.harness.receiver import Received, Receiver, Reply, receiving
from tests.harness.world import BAD, GOOD, MODEL, PRECISION, World, sample, slices, traffic

from modelloop.api.resources import MODELS
from modelloop.kube.rest import SECRETS, Kube
from modelloop.notify.delivery import DeliveryError, post_json

CANDIDATE = "fraud-v2"
LOOP = [
    "breach",
    "trainingStarted",
    "trainingFinished",
    "validated",
    "rejected",
    "rolloutStarted",
    "canaryStep",
    "promoted",
    "rolledBack",
]
HANG_TIMEOUT, ATTEMPTS, BACKOFF = 3.0, 2, 1.0
# The trainer's result: better than the champion where it breached (us), as good elsewhere.
RESULT = {
    "artifactURI": "s3://models/fraud/2/model.joblib",
    "metrics": {
        "candidate": [
            {"metric": "precision", "slice": "eu", "value": 0.95},
            {"metric": "precision", "slice": "us", "value": 0.93},
        ],
        "champion": [
            {"metric": "precision", "slice": "eu", "value": 0.95},
            {"metric": "precision", "slice": "us", "value": 0.55},
        ],
    },
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """/ok and /slack answer 200 at once; /hang never answers (it holds the request until
    the test ends)."""
    with receiving(Reply(200), routes={"/hang": Reply(delay=120)}) as made:
        yield made


def secret(kube: Kube, namespace: str, name: str, url: str) -> None:
    kube.create(
        SECRETS,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {"url": base64.b64encode(url.encode()).decode()},
        },
    )


def grant_model_secrets(kube: Kube, namespace: str) -> None:
    """The chart's modelSecrets RBAC for this namespace, as a release watching it renders
    it: the ClusterRole and a RoleBinding here (gone with the namespace)."""
    rendered = render("--set", "modelSecrets=true", "--set", f"watchNamespaces={{{namespace}}}")
    granted = [m for m in rendered if m["metadata"]["name"] == "modelloop-model-secrets"]
    assert sorted(m["kind"] for m in granted) == ["ClusterRole", "RoleBinding"]
    for manifest in granted:
        apply(kube, manifest)


def subscriber(name: str, secret_name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "webhook",
        "urlFrom": {"secretKeyRef": {"name": secret_name, "key": "url"}},
        "events": LOOP,
    }


SPEC: dict[str, Any] = {
    "slices": slices("eu", "us"),
    "metrics": [PRECISION],
    "automation": "promote",
    "retraining": {
        "triggers": {"onBreach": ["precision"]},
        "cooldown": "1h",
        "dataWindow": "7d",
        "outputURI": "s3://models/fraud",
        "job": TRAINING_JOB,
    },
    "validation": {"gates": [{"metric": "precision", "notWorseThan": {"absolute": 0.02}}]},
    "traffic": {"provider": "replicas"},
    "rollout": {
        "steps": [
            {"weight": 10, "duration": "2s"},
            {"weight": 50, "duration": "2s"},
            {"weight": 100, "duration": "0s"},
        ],
        "analysis": {"interval": "1s", "consecutiveSuccesses": 2, "maxInconclusive": 60},
        "scaleDownDelay": "0s",
    },
    "notifications": [subscriber("ok", "ok-hook"), subscriber("hangs", "hang-hook")],
}


def posted_at(notification: dict[str, Any]) -> float:
    """When the operator posted the Event: its name ends in the time in hex nanoseconds."""
    return int(notification["event"]["name"].rsplit(".", 1)[1], 16) / 1e9


def finish_training(kube: Kube, namespace: str) -> None:
    finish_running_training(kube, namespace, json.dumps(RESULT), 90)


def reasons(received: list[Received]) -> list[str]:
    return [r.body["event"]["reason"] for r in received]


def test_a_receiver_gets_the_whole_loop_in_order_with_the_numbers_and_a_hang_delays_nothing(
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    receiver: Receiver,
    exporter: Callable[[str, dict[str, Any]], Exporter],
    prometheus: Callable[[dict[str, Any]], PrometheusServer],
    operator: Callable[..., Process],
) -> None:
    grant_model_secrets(kube, namespace)
    secret(kube, namespace, "ok-hook", f"{receiver.url}/ok")
    secret(kube, namespace, "hang-hook", f"{receiver.url}/hang")
    # The operator's own receiver (Slack format, default events); its Secret is in the
    # operator's namespace, which is this one for this operator.
    secret(kube, namespace, "platform-slack", f"{receiver.url}/slack")
    settings = tmp_path / "notifications.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "receivers": [
                    {
                        "name": "platform",
                        "type": "slack",
                        "urlFrom": {"secretKeyRef": {"name": "platform-slack", "key": "url"}},
                    }
                ],
                "timeout": f"{HANG_TIMEOUT:g}s",
                "attempts": ATTEMPTS,
                "backoff": f"{BACKOFF:g}s",
            }
        )
    )
    # fraud-v1 breaches on us; the candidate's counters are there for the canary analysis.
    state = traffic({"eu": GOOD, "us": BAD})
    state["counters"] += traffic({"eu": GOOD, "us": GOOD}, version=CANDIDATE)["counters"]
    served = exporter("exporter-v1", state)
    prom = prometheus(scrape_config({"model-v1": served.address}))

    def start(*args: str) -> Process:
        return operator(*args, env={"MODELLOOP_NAMESPACE": namespace})

    w = World(
        kube,
        namespace,
        tmp_path,
        served,
        prom,
        start,
        SPEC,
        operator_args=[f"--notifications={settings}"],
    )
    wait_for(lambda: "TrainingStarted" in reasons(receiver.sent_to("/ok")), 90, "the training")
    finish_training(kube, namespace)
    wait_for(lambda: "Promoted" in reasons(receiver.sent_to("/ok")), 150, "the promotion")

    ok = receiver.sent_to("/ok")
    assert reasons(ok) == [
        "Breach",
        "TrainingStarted",
        "TrainingSucceeded",
        "Validated",
        "RolloutStarted",
        "WeightChanged",
        "StepAdvanced",
        "Promoted",
    ]
    by_reason = {r.body["event"]["reason"]: r.body for r in ok}
    model = kube.get(MODELS, namespace, MODEL) or {}
    for body in by_reason.values():
        assert body["object"] == {
            "apiVersion": "modelloop.dev/v1alpha1",
            "kind": "Model",
            "namespace": namespace,
            "name": MODEL,
            "uid": model["metadata"]["uid"],
            "kubectl": f"kubectl get model -n {namespace} {MODEL}",
        }

    [breach] = by_reason["Breach"]["evidence"]["verdicts"]
    assert (breach["metric"], breach["slice"], breach["version"], breach["verdict"]) == (
        "precision",
        "us",
        "fraud-v1",
        "breach",
    )
    assert breach["value"] == pytest.approx(0.5, abs=0.05)
    assert breach["samples"] >= PRECISION["minSamples"]
    assert breach["objective"] == {"min": 0.8}

    started = by_reason["TrainingStarted"]["evidence"]["training"]
    assert (started["sequence"], started["trigger"]["kind"]) == (2, "breach")
    assert started["trigger"]["failing"] == [{"metric": "precision", "slice": "us"}]
    finished = by_reason["TrainingSucceeded"]["evidence"]["training"]
    assert (finished["outcome"], finished["version"]) == ("Succeeded", CANDIDATE)

    validated = by_reason["Validated"]["evidence"]
    assert validated["version"] == CANDIDATE
    gates = {(g["gate"], g["slice"]): g for g in validated["gates"]}
    repair = gates[("repair", "us")]
    assert (repair["candidate"], repair["champion"], repair["passed"]) == (0.93, 0.55, True)
    assert all(g["passed"] for g in validated["gates"])

    assert by_reason["RolloutStarted"]["evidence"]["canary"]["version"] == CANDIDATE
    for reason in ("StepAdvanced", "Promoted"):
        evidence = by_reason[reason]["evidence"]
        assert evidence["canary"]["version"] == CANDIDATE
        rows = {r["slice"]: r for r in evidence["analysis"]}
        assert set(rows) == {"eu", "us"}, reason
        assert rows["us"]["outcome"] == "pass"
        assert rows["us"]["canary"] == pytest.approx(0.95, abs=0.05)
        assert rows["us"]["stable"] == pytest.approx(0.5, abs=0.05)
        assert rows["us"]["canarySamples"] > 0
        assert rows["us"]["stableSamples"] > 0

    # The operator's own receiver, in Slack's format, on its default events (a fault too,
    # when a reconcile saw the Model a moment before its first ModelVersion: Ready False).
    told = ["Breach", "TrainingSucceeded", "Validated", "Promoted"]
    slack = wait_for(
        lambda: [
            r
            for r in receiver.sent_to("/slack")
            if r.body["blocks"][0]["text"]["text"].split(":")[0] in told
        ],
        30,
        "the operator's receiver",
    )
    assert [r.body["blocks"][0]["text"]["text"] for r in slack] == [
        f"{reason}: {namespace}/{MODEL}" for reason in told
    ]
    assert "*precision on us of fraud-v1*: 0.5" in slack[0].body["blocks"][2]["text"]["text"]

    # The receiver that hangs delayed nothing. Waiting on it costs ATTEMPTS x HANG_TIMEOUT
    # + BACKOFF (7 s) per notification: each notification reached the other receiver
    # within one timeout of its Event (in ms, in fact), and the loop's steps that follow
    # one another on one thread (TrainingSucceeded then Validated, each told to the hang
    # too) came sooner than one wait on it.
    wait = ATTEMPTS * HANG_TIMEOUT + BACKOFF
    for r in ok:
        assert r.at - posted_at(r.body) < HANG_TIMEOUT, r.body["event"]["reason"]
    posted = {reason: posted_at(body) for reason, body in by_reason.items()}
    assert posted["Validated"] - posted["TrainingSucceeded"] < wait - 1
    assert posted["RolloutStarted"] - posted["Validated"] < wait - 1
    # ... while it was asked, again after its timeout and the backoff, and given up.
    hang = receiver.sent_to("/hang")
    assert [r.body["event"]["reason"] for r in hang[:2]] == ["Breach", "Breach"]
    assert hang[1].at - hang[0].at >= HANG_TIMEOUT + BACKOFF - 0.5

    def failed() -> float | None:
        return sample(w.operator_metrics(), "modelloop_notifications_failed_total", type="webhook")

    wait_for(failed, ATTEMPTS * HANG_TIMEOUT + BACKOFF + 10, "the hang counted as failed")
    assert time.time() - hang[0].at >= ATTEMPTS * HANG_TIMEOUT + BACKOFF - 0.5
    metrics = w.operator_metrics()
    timeouts = sample(
        metrics, "modelloop_notification_attempts_failed_total", type="webhook", error="timeout"
    )
    assert timeouts is not None
    assert timeouts >= ATTEMPTS
    assert sample(metrics, "modelloop_notifications_sent_total", type="webhook") == len(ok)
    sent = len(receiver.sent_to("/slack"))
    assert sample(metrics, "modelloop_notifications_sent_total", type="slack") == sent


# --------------------------------------------------------------------------- one attempt


@pytest.mark.parametrize(
    ("path", "kind", "retryable"),
    [
        ("/ok", None, None),
        ("/status/404", "http", False),
        ("/status/503", "http", True),
        ("/status/429", "http", True),
        ("/redirect", "http", False),  # a 3xx is not followed
        ("/hang", "timeout", True),
    ],
)
def test_one_attempt_against_real_http_answers(
    path: str, kind: str | None, retryable: bool | None
) -> None:
    routes = {
        "/hang": Reply(delay=2),
        "/redirect": Reply(307, headers={"Location": "http://169.254.169.254/"}),
        **{f"/status/{code}": Reply(code) for code in (404, 503, 429)},
    }
    with receiving(Reply(200), routes) as server:
        url = server.url + path
        started = time.monotonic()
        if kind is None:
            post_json(url, b"{}", timeout=1.0)
            return
        with pytest.raises(DeliveryError) as raised:
            post_json(url, b"{}", timeout=1.0)
        assert (raised.value.kind, raised.value.retryable) == (kind, retryable)
        assert url not in str(raised.value)  # a URL is a credential: never in a message
        if kind == "timeout":
            assert 0.9 < time.monotonic() - started < 1.9


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("file:///etc/passwd", "url"),
        ("ftp://example.com/x", "url"),
        ("http://127.0.0.1:1/nothing-listens", "connection"),
    ],
)
def test_urls_that_are_not_http_are_refused_and_no_connection_is_retryable(
    url: str, kind: str
) -> None:
    with pytest.raises(DeliveryError) as raised:
        post_json(url, b"{}", timeout=1.0)
    assert raised.value.kind == kind
    assert raised.value.retryable is (kind == "connection")
    assert url not in str(raised.value)


# --------------------------------------------------------------------------- the chart


def secret_rules(manifests: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [
        (m["kind"], m["metadata"]["name"], rule)
        for m in manifests
        if m["kind"] in ("Role", "ClusterRole")
        for rule in m["rules"]
        if "secrets" in rule["resources"]
    ]


def test_the_chart_reads_model_secrets_only_when_asked_and_only_by_name() -> None:
    receivers = (
        "--set-json",
        'notifications.receivers=[{"name": "platform", "type": "teams", '
        '"urlFrom": {"secretKeyRef": {"name": "platform-teams", "key": "url"}}}]',
    )
    default = render(*receivers)
    # The operator's own receivers' Secrets join the providers' in the release namespace.
    [(kind, name, rule)] = secret_rules(default)
    assert (kind, name, rule["verbs"]) == ("Role", "modelloop-credentials", ["get"])
    assert "platform-teams" in rule["resourceNames"]
    config = next(m for m in default if m["kind"] == "ConfigMap")
    settings = yaml.safe_load(config["data"]["notifications.yaml"])
    assert settings["receivers"][0]["name"] == "platform"
    deployment = next(m for m in default if m["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--notifications=/etc/modelloop/notifications.yaml" in args

    for extra, bindings in (
        ((), [("ClusterRoleBinding", None)]),
        (
            ("--set", "watchNamespaces={team-a,team-b}"),
            [("RoleBinding", "team-a"), ("RoleBinding", "team-b")],
        ),
    ):
        manifests = render(*receivers, "--set", "modelSecrets=true", *extra)
        model_secrets = [r for r in secret_rules(manifests) if r[1] == "modelloop-model-secrets"]
        assert model_secrets == [
            (
                "ClusterRole",
                "modelloop-model-secrets",
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            )
        ]
        bound = [
            (m["kind"], m["metadata"].get("namespace"))
            for m in manifests
            if m["kind"] in ("RoleBinding", "ClusterRoleBinding")
            and m["roleRef"]["name"] == "modelloop-model-secrets"
        ]
        assert bound == bindings
        for m in manifests:
            if m["kind"].endswith("Binding") and m["roleRef"]["name"] == "modelloop-model-secrets":
                assert m["subjects"] == [
                    {"kind": "ServiceAccount", "name": "modelloop", "namespace": OPERATOR_NAMESPACE}
                ]

"""The rollout world the e2e tests share: a churn model with two live model-server
processes (stable and candidate) whose per-slice accuracy the test controls, a real
Prometheus scraping both, the operator, and a traffic generator that splits its
requests by the weights the operator wrote in the route (or the replica counts)."""

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config, watch
from localcluster.modelserver import ModelServer
from localcluster.processes import Process, free_port
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.traffic import (
    TrafficGenerator,
    WeightReader,
    httproute_weights,
    replica_weights,
    virtualservice_weights,
)
from localcluster.waiting import wait_for
from tests.harness.world import SERVING_IMAGE, OperatorWorld

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP, VERSION
from modelloop.kube.rest import DEPLOYMENTS, Kube, Resource

T = TypeVar("T")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
MODEL, STABLE, CANARY = "churn", "churn-v1", "churn-v2"
SLICES = ("mobile", "web")
USER_ROUTE = "churn-public"
PORT = 8080

ACCURACY = {
    "name": "accuracy",
    "query": 'sum(increase(model_correct_predictions_total{version="$version", $slice}[$window]))'
    ' / sum(increase(model_predictions_total{version="$version", $slice}[$window]))',
    "sampleQuery": 'sum(increase(model_predictions_total{version="$version", $slice}[$window]))',
    "minSamples": 40,
    "window": "15s",
    "canary": {"test": "proportion"},
}

TRAFFIC: dict[str, dict[str, Any]] = {
    "gateway-managed": {
        "provider": "gatewayAPI",
        "gatewayAPI": {"parentRefs": [{"name": "public"}], "hostnames": ["churn.example.com"]},
    },
    "gateway-patch": {
        "provider": "gatewayAPI",
        "gatewayAPI": {"mode": "patch", "routeName": USER_ROUTE},
    },
    "istio-managed": {"provider": "istio", "istio": {"hosts": ["churn.example.com"]}},
    "replicas": {"provider": "replicas"},
}


def rollout(**analysis: Any) -> dict[str, Any]:
    """Short steps so a rollout takes seconds: 10% and 50% analysed, then promotion."""
    return {
        "steps": [
            {"weight": 10, "duration": "4s"},
            {"weight": 50, "duration": "4s"},
            # Promotion is the move into 100%: no time is spent there, and a duration would
            # count against analysis.stepTimeout like the others.
            {"weight": 100, "duration": "0s"},
        ],
        "analysis": {
            "interval": "2s",
            "consecutiveSuccesses": 2,
            "maxInconclusive": 40,
            **analysis,
        },
        "scaleDownDelay": "1m",
    }


def model(traffic: dict[str, Any], model_name: str = MODEL, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": model_name},
        "spec": {
            "metricsProvider": "test",
            "evaluationInterval": "1s",
            "serving": {
                "replicas": 10,
                "port": PORT,
                "template": {"spec": {"containers": [{"name": "s", "image": SERVING_IMAGE}]}},
            },
            "traffic": traffic,
            "slices": [{"name": s, "matchLabels": {"slice": s}} for s in SLICES],
            "metrics": [ACCURACY],
            "automation": "promote",
            "rollout": rollout(),
            **spec,
        },
    }


def version(name: str, model_name: str = MODEL, slices: Sequence[str] = SLICES) -> dict[str, Any]:
    """A version made outside ModelLoop, with its trainer's offline evaluation: as good as
    the champion on every slice (what the tests vary shows online only), so that the
    default offline gate (no slice worse beyond noise) validates it."""
    offline = [
        {"metric": ACCURACY["name"], "slice": s, "value": 0.9, "samples": 1000} for s in slices
    ]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "model": model_name,
            "uri": f"s3://models/{model_name}/{name}",
            "metrics": {"candidate": offline, "champion": offline},
        },
    }


def user_route(namespace: str) -> dict[str, Any]:
    """A route the user owns in Git, pointing at the Model's Service (patch mode)."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": USER_ROUTE, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{"backendRefs": [{"name": MODEL, "port": PORT}]}],
        },
    }


def weight_reader(kube: Kube, namespace: str, traffic: str) -> WeightReader:
    if traffic == "gateway-managed":
        return httproute_weights(kube, namespace, MODEL)
    if traffic == "gateway-patch":
        return httproute_weights(kube, namespace, USER_ROUTE)
    if traffic == "istio-managed":
        return virtualservice_weights(kube, namespace, MODEL)
    return replica_weights(kube, namespace, MODEL)


@dataclass(frozen=True)
class RolloutParts:
    """What every rollout world is made of: the cluster, the test's namespace and
    directory, and the starters of model servers, Prometheus, the operator and traffic."""

    kube: Kube
    namespace: str
    tmp_path: Path
    servers: Callable[..., ModelServer]
    prometheus: Callable[..., PrometheusServer]
    operator: Callable[..., Process]
    generator: Callable[..., TrafficGenerator]


class CanaryWorld(OperatorWorld):
    """Stable serving and taking traffic; ``release`` makes the candidate's ModelVersion."""

    def __init__(
        self,
        parts: RolloutParts,
        traffic: str,
        stable: Mapping[str, float],
        candidate: Mapping[str, float],
        rates: Mapping[str, float],
        spec: dict[str, Any],
    ) -> None:
        self._start(parts, stable, candidate)
        if traffic == "gateway-patch":
            parts.kube.create(HTTPROUTES, parts.namespace, user_route(parts.namespace))
        reader = weight_reader(parts.kube, parts.namespace, traffic)
        self._serve(parts, model(TRAFFIC[traffic], **spec), reader, rates)

    def _start(
        self, parts: RolloutParts, stable: Mapping[str, float], candidate: Mapping[str, float]
    ) -> None:
        """The two versions' model servers, a Prometheus scraping them, and the operator."""
        self.servers = {
            STABLE: parts.servers(MODEL, STABLE, stable, seed=1),
            CANARY: parts.servers(MODEL, CANARY, candidate, seed=2),
        }
        # Prometheus scrapes the operator too: the dashboard's panels read its metrics.
        metrics_port = free_port()
        targets = {name: s.address for name, s in self.servers.items()}
        self.prometheus = parts.prometheus(
            scrape_config({**targets, "operator": f"127.0.0.1:{metrics_port}"})
        )
        OperatorWorld.__init__(
            self,
            parts.kube,
            parts.namespace,
            parts.tmp_path,
            self.prometheus.url,
            parts.operator,
            MODEL,
            metrics_port,
        )

    def _serve(
        self,
        parts: RolloutParts,
        body: dict[str, Any],
        reader: WeightReader,
        rates: Mapping[str, float],
    ) -> None:
        """The Model and its stable version; traffic once the stable takes all of it."""
        created = self.kube.create(MODELS, self.namespace, body)
        self.slices = [s["name"] for s in created["spec"]["slices"]]
        self.kube.create(MODEL_VERSIONS, self.namespace, version(STABLE, slices=self.slices))
        wait_for(lambda: percent(reader()) == {STABLE: 100}, 60, f"{STABLE} takes all traffic")
        self.traffic = parts.generator(reader, self.servers, rates)

    def release(self) -> None:
        """The candidate appears (made outside ModelLoop): validated, then rolled out."""
        self.kube.create(MODEL_VERSIONS, self.namespace, version(CANARY, slices=self.slices))

    def phase_of(self, name: str) -> str | None:
        body = self.kube.get(MODEL_VERSIONS, self.namespace, name) or {}
        phase: str | None = (body.get("status") or {}).get("phase")
        return phase

    def await_phase(self, name: str, phase: str, timeout: float = 120) -> None:
        try:
            wait_for(lambda: self.phase_of(name) == phase, timeout, f"{name} in phase {phase}")
        except AssertionError as error:
            raise AssertionError(
                f"{error}; the rollout: {self.status().get('canary')}; "
                f"the Deployments: {self.deployment_states()}"
            ) from None

    def deployment_states(self) -> dict[str, Any]:
        """Replica counts and conditions of the Model's Deployments, to explain a stall."""
        states: dict[str, Any] = {}
        for d in self.kube.list(DEPLOYMENTS, self.namespace, f"modelloop.dev/model={MODEL}"):
            status = d.get("status") or {}
            states[d["metadata"]["name"]] = {
                "replicas": d["spec"].get("replicas"),
                "ready": status.get("readyReplicas"),
                "updated": status.get("updatedReplicas"),
                "conditions": {c["type"]: c["reason"] for c in status.get("conditions") or []},
            }
        return states

    def canary_weights(self) -> list[int]:
        """The candidate's weight each time the weights changed, as the data plane saw them."""
        return [percent(o.weights).get(CANARY, 0) for o in self.traffic.timeline]


class CanaryFleet(OperatorWorld):
    """Many Models in one namespace, each with a stable and a candidate server of the same
    accuracy (different seeds), on managed HTTPRoutes; one Prometheus, one operator."""

    def __init__(
        self,
        parts: RolloutParts,
        size: int,
        accuracy: Mapping[str, float],
        rates: Mapping[str, float],
        spec: dict[str, Any],
    ) -> None:
        kube, namespace = parts.kube, parts.namespace
        self.names = [f"{MODEL}{i}" for i in range(size)]
        self.servers = {
            name: {
                f"{name}-v{n}": parts.servers(name, f"{name}-v{n}", accuracy, seed=10 * i + n)
                for n in (1, 2)
            }
            for i, name in enumerate(self.names)
        }
        targets = {v: s.address for pair in self.servers.values() for v, s in pair.items()}
        self.prometheus = parts.prometheus(scrape_config(targets))
        super().__init__(
            kube, namespace, parts.tmp_path, self.prometheus.url, parts.operator, self.names[0]
        )
        managed = TRAFFIC["gateway-managed"]
        for name in self.names:
            kube.create(MODELS, namespace, model(managed, model_name=name, **spec))
            kube.create(MODEL_VERSIONS, namespace, version(f"{name}-v1", name))
        self.traffic: dict[str, TrafficGenerator] = {}
        for i, name in enumerate(self.names):
            reader = httproute_weights(kube, namespace, name)
            wait_for(reader, 60, f"{name}-v1 takes all traffic")  # weights written: truthy
            self.traffic[name] = parts.generator(reader, self.servers[name], rates, seed=i)

    def release(self) -> None:
        for name in self.names:
            self.kube.create(MODEL_VERSIONS, self.namespace, version(f"{name}-v2", name))

    def phases(self) -> dict[str, str | None]:
        """Each candidate's ModelVersion phase."""
        listed = self.kube.list(MODEL_VERSIONS, self.namespace)
        phases = {v["metadata"]["name"]: (v.get("status") or {}).get("phase") for v in listed}
        return {f"{name}-v2": phases.get(f"{name}-v2") for name in self.names}

    def canary_weights(self, name: str) -> list[int]:
        timeline = self.traffic[name].timeline
        return [percent(o.weights).get(f"{name}-v2", 0) for o in timeline]


def percent(weights: Mapping[str, int]) -> dict[str, int]:
    """Relative weights (route weights or replica counts) as whole percents, zeros left out."""
    total = sum(weights.values())
    return {k: round(100 * w / total) for k, w in weights.items() if w} if total else {}


def forward_only(weights: list[int]) -> bool:
    """No flapping: within a rollout the canary's weight only grows."""
    return all(a <= b for a, b in pairwise(weights))


def changes(values: Sequence[T]) -> list[T]:
    """The values without their repeats in a row: [10, 10, 50, 50, 20] -> [10, 50, 20]."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


class StatusLog:
    """Every status a Model had, in order, as a watch delivers each write: a condition that
    one reconcile writes and the next replaces is seen too, where a poll could miss it."""

    def __init__(self, kubeconfig: Path, namespace: str, name: str) -> None:
        self._api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self._statuses: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watching = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, args=(namespace, name), name="status-log", daemon=True
        )
        self._thread.start()
        wait_for(self._watching.is_set, 30, f"a watch on Model {name}")

    def _watch(self, namespace: str, name: str) -> None:
        models = client.CustomObjectsApi(self._api)
        resource_version: str | None = None  # each watch goes on where the last one ended
        while not self._stopping.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    models.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    "models",
                    field_selector=f"metadata.name={name}",
                    resource_version=resource_version,
                    timeout_seconds=2,
                ):
                    body = event["object"]
                    resource_version = body["metadata"]["resourceVersion"]
                    with self._lock:
                        self._statuses.append(body.get("status") or {})
                    self._watching.set()
                    if self._stopping.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except client.ApiException:
                resource_version = None  # 410 Gone: watch again from the current state

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._api.close()

    @property
    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._statuses)

    def reasons(self, type_: str) -> list[str]:
        """The reasons the condition ``type_`` had, in order, without repeats in a row."""
        seen = [
            next((c["reason"] for c in s.get("conditions") or [] if c["type"] == type_), None)
            for s in self.statuses
        ]
        return changes([r for r in seen if r])

    def steps(self) -> list[tuple[int, int]]:
        """The canary's (step, weight) in order, without repeats in a row."""
        return changes([(c["step"], c["weight"]) for s in self.statuses if (c := s.get("canary"))])

    def analyses(self) -> list[list[dict[str, Any]]]:
        """Each analysis the canary status showed, in order: its rows per metric and slice."""
        return changes(
            [c["analysis"] for s in self.statuses if (c := s.get("canary")) and c.get("analysis")]
        )


def breach_loop(**training: Any) -> dict[str, Any]:
    """The churn Model's spec beyond the rollout, for the whole loop: an accuracy objective
    whose breach on a slice (after 3 s) triggers a training — ``job=`` or ``workload=``,
    as ``spec.retraining`` takes them — and a validation gate."""
    return {
        "metrics": [{**ACCURACY, "objective": {"min": 0.75}, "breach": {"for": "3s"}}],
        "retraining": {
            "triggers": {"onBreach": ["accuracy"]},
            "cooldown": "1h",
            "dataWindow": "1d",
            "outputURI": f"s3://models/{MODEL}",
            **training,
        },
        "validation": {"gates": [{"metric": "accuracy", "notWorseThan": {"absolute": 0.02}}]},
    }

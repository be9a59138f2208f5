"""The data plane, played by the harness: a traffic generator that obeys the weights written
in the cluster.

There is no gateway, mesh or kube-proxy here, so this thread reads the weights where the
operator writes them (an HTTPRoute, a VirtualService, or Deployment replicas) every
``refresh`` seconds and sends each slice's requests to the model servers in those
proportions. It records every change of the weights it saw, with the time it saw it: the
end-to-end tests judge a rollout by that timeline (no flapping, reaction time).

The weight readers are written from the Gateway API, Istio and Kubernetes semantics, not
from the operator's code, so that they check it rather than mirror it.
"""

import http.client
import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from localcluster.modelserver import ModelServer
from modelloop.kube.rest import DEPLOYMENTS, Kube, Resource

Obj = dict[str, Any]
WeightReader = Callable[[], dict[str, int]]
"""Returns the weights written right now: version -> weight (relative, not percent)."""
Example = Callable[[str], dict[str, Any]]
"""Returns the next request's example for a slice (features and label), to send as is."""

HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices")
LABEL_MODEL = "modelloop.dev/model"
LABEL_VERSION = "modelloop.dev/version"


def weights_of_httproute(route: Obj) -> dict[str, int]:
    """backendRef name -> weight, summed over all rules; a missing weight is 1 (Gateway API)."""
    weights: dict[str, int] = {}
    for rule in route.get("spec", {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            weights[ref["name"]] = weights.get(ref["name"], 0) + ref.get("weight", 1)
    return weights


def weights_of_virtualservice(service: Obj) -> dict[str, int]:
    """Destination host's short name -> weight, summed over all HTTP routes.

    ``svc``, ``svc.ns`` and ``svc.ns.svc.cluster.local`` are all ``svc``. A missing weight
    is 100 for a route's only destination and 0 otherwise (Istio).
    """
    weights: dict[str, int] = {}
    for route in service.get("spec", {}).get("http") or []:
        destinations = route.get("route") or []
        for destination in destinations:
            host = destination["destination"]["host"].split(".", 1)[0]
            weight = destination.get("weight", 100 if len(destinations) == 1 else 0)
            weights[host] = weights.get(host, 0) + weight
    return weights


def weights_of_deployments(deployments: Iterable[Obj]) -> dict[str, int]:
    """Version label -> spec.replicas (1 when unset, as the API defaults it).

    Without a mesh a Service spreads requests evenly over pods, so a version's share of
    traffic is its share of the replicas.
    """
    weights: dict[str, int] = {}
    for deployment in deployments:
        version = deployment["metadata"]["labels"][LABEL_VERSION]
        weights[version] = weights.get(version, 0) + deployment["spec"].get("replicas", 1)
    return weights


def httproute_weights(kube: Kube, namespace: str, route_name: str) -> WeightReader:
    """The HTTPRoute's weights; none while it does not exist."""
    return lambda: weights_of_httproute(kube.get(HTTPROUTES, namespace, route_name) or {})


def virtualservice_weights(kube: Kube, namespace: str, name: str) -> WeightReader:
    """The VirtualService's weights; none while it does not exist."""
    return lambda: weights_of_virtualservice(kube.get(VIRTUAL_SERVICES, namespace, name) or {})


def replica_weights(kube: Kube, namespace: str, model: str) -> WeightReader:
    """The replicas of the model's Deployments, read in one list: one consistent snapshot."""
    selector = f"{LABEL_MODEL}={model}"
    return lambda: weights_of_deployments(kube.list(DEPLOYMENTS, namespace, selector))


def choose(weights: Mapping[str, int], rng: random.Random, k: int) -> list[str]:
    """``k`` independent draws, each version with probability weight / total weight.

    Versions with weight 0 or less never come up; nothing comes up when none has weight.
    """
    live = sorted(version for version, weight in weights.items() if weight > 0)
    if not live:
        return []
    return rng.choices(live, [weights[version] for version in live], k=k)


class Observation(NamedTuple):
    """Weights the generator started obeying, and when (monotonic and wall clock)."""

    monotonic: float
    wall: float
    weights: dict[str, int]


@dataclass(frozen=True)
class Stats:
    """What the generator did so far; ``failed`` and ``unrouted`` are errors, not crashes."""

    elapsed: float
    delivered: dict[str, int]  # version -> requests its server answered
    failed: dict[str, int]  # version -> no server, connection error, bad or foreign answer
    unrouted: int  # requests due while no version had weight
    dropped: int  # requests due while the workers were a second behind
    read_errors: int
    last_read_error: str | None

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return sum(self.delivered.values()) / self.elapsed if self.elapsed else 0.0


class TrafficGenerator:
    """Sends ``rates[slice]`` requests per second per slice, split by the weights read."""

    def __init__(
        self,
        reader: WeightReader,
        servers: Mapping[str, ModelServer],
        rates: Mapping[str, float],
        *,
        refresh: float = 0.2,
        label_delay: float | None = None,
        workers: int = 4,
        seed: int = 0,
        example: Example | None = None,
    ) -> None:
        """``servers``: version -> its server; the test may add servers while this runs.
        ``example``: what each request carries, for servers of a real model."""
        self.reader, self.servers, self.rates = reader, servers, dict(rates)
        self.refresh = refresh
        self._extra = {} if label_delay is None else {"label_delay": label_delay}
        self._example = example
        self._bodies = {s: json.dumps({"slice": s, **self._extra}).encode() for s in self.rates}
        self._rng = random.Random(seed)
        # At most a second of requests waits: past that they are dropped, and counted.
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(
            maxsize=max(1, round(sum(self.rates.values())))
        )
        self._lock = threading.Lock()
        self._timeline: list[Observation] = []
        self._weights: dict[str, int] = {}
        self._delivered: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._unrouted = self._dropped = self._read_errors = 0
        self._last_read_error: str | None = None
        self._stopping = threading.Event()
        self._started = 0.0
        self._stopped: float | None = None
        self._threads = [threading.Thread(target=self._schedule, name="traffic", daemon=True)]
        self._threads += [
            threading.Thread(target=self._work, name=f"traffic-{i}", daemon=True)
            for i in range(workers)
        ]

    @property
    def timeline(self) -> list[Observation]:
        """Every change of the weights, in order; the first entry is the first read."""
        with self._lock:
            return list(self._timeline)

    def stats(self) -> Stats:
        with self._lock:
            return Stats(
                elapsed=(self._stopped or time.monotonic()) - self._started,
                delivered=dict(self._delivered),
                failed=dict(self._failed),
                unrouted=self._unrouted,
                dropped=self._dropped,
                read_errors=self._read_errors,
                last_read_error=self._last_read_error,
            )

    def start(self) -> None:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stops sending; requests still queued are discarded."""
        self._stopping.set()
        self._threads[0].join()
        with self._lock:
            self._stopped = time.monotonic()  # the rate counts running time only
        for _ in self._threads[1:]:
            self._queue.put(None)
        for thread in self._threads[1:]:
            thread.join()

    def _schedule(self) -> None:
        """Each tick: read the weights, then queue the requests due since the start.

        Counting what is due since the start, not per tick, keeps the rate exact when a tick
        is late (a slow read) and never loses the fractional request of a tick.
        """
        scheduled = dict.fromkeys(self.rates, 0)
        tick = self._started
        while not self._stopping.wait(max(0.0, tick - time.monotonic())):
            self._observe()
            elapsed = time.monotonic() - self._started
            for slice_, rate in self.rates.items():
                due = int(rate * elapsed) - scheduled[slice_]
                scheduled[slice_] += due
                self._enqueue(slice_, due)
            tick = max(tick + self.refresh, time.monotonic())

    def _observe(self) -> None:
        try:
            weights = self.reader()
        except Exception as error:  # the API may fail for a moment: keep the last weights
            with self._lock:
                self._read_errors += 1
                self._last_read_error = repr(error)
            return
        if weights != self._weights or not self._timeline:
            observation = Observation(time.monotonic(), time.time(), weights)
            with self._lock:
                self._weights = weights
                self._timeline.append(observation)

    def _enqueue(self, slice_: str, count: int) -> None:
        versions = choose(self._weights, self._rng, count)
        unrouted = count - len(versions)
        dropped = 0
        for version in versions:
            try:
                self._queue.put_nowait((version, slice_))
            except queue.Full:
                dropped += 1
        if unrouted or dropped:
            with self._lock:
                self._unrouted += unrouted
                self._dropped += dropped

    def _work(self) -> None:
        """Sends queued requests, over one keep-alive connection per server."""
        connections: dict[int, http.client.HTTPConnection] = {}
        while (item := self._queue.get()) is not None:
            if self._stopping.is_set():
                continue
            version, slice_ = item
            server = self.servers.get(version)
            ok = server is not None and self._send(connections, server, slice_)
            with self._lock:
                (self._delivered if ok else self._failed)[version] += 1
        for connection in connections.values():
            connection.close()

    def _body(self, slice_: str) -> bytes:
        if self._example is None:
            return self._bodies[slice_]
        return json.dumps({"slice": slice_, **self._extra, **self._example(slice_)}).encode()

    def _send(
        self, connections: dict[int, http.client.HTTPConnection], server: ModelServer, slice_: str
    ) -> bool:
        connection = connections.get(server.port)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            connections[server.port] = connection
        try:
            connection.request("POST", "/predict", self._body(slice_))
            response = connection.getresponse()
            answer = json.loads(response.read()) if response.status == 200 else {}
        except (OSError, ValueError, http.client.HTTPException):
            connection.close()  # it reconnects on the next request
            return False
        return bool(answer.get("version") == server.version)

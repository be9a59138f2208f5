"""The data plane, played by the harness: a traffic generator that obeys the weights written
in the cluster.

There is no gateway, mesh or kube-proxy here, so this thread reads the weights where the
operator writes them (an HTTPRoute, a VirtualService, or Deployment replicas) every
``refresh`` seconds and sends each slice's requests to the model servers in those
proportions. It records every change of the weights it saw, with the time it saw it: the
end-to-end tests judge a rollout by that timeline (no flapping, reaction time).

The weight readers are written from the Gateway API, Istio and Kubernetes semantics, not
from the operator's code, so that they check it rather than mirror it.

With a ``LabelFeed`` it also plays the system that learns the truth later: each request
carries an id and its truth (``label``), and once answered, its label is posted to the
feedback service's ``/v1/labels`` ``delay`` seconds later — model servers logging their
predictions there (``--feedback``) are joined with them by that id.
"""

import heapq
import http.client
import itertools
import json
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from localcluster.modelserver import ModelServer
from modelloop.kube.rest import DEPLOYMENTS, Kube, Resource
from modelloop.sdk import FeedbackClient, FeedbackError

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
    labelled: int = 0  # labels the feedback service took (with a LabelFeed)
    label_errors: int = 0  # labels it refused, or that could not reach it

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return sum(self.delivered.values()) / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True)
class LabelFeed:
    """Where each answered request's truth goes, and how late: the feedback service at
    ``url``, ``delay`` seconds after the answer."""

    url: str
    delay: float


class Labeller:
    """Labels due later, in one heap served by one thread, posted in batches when due;
    those not due yet when it stops are never sent."""

    def __init__(self, feed: LabelFeed) -> None:
        self.delay = feed.delay
        self._client = FeedbackClient(feed.url, timeout=5.0, retries=2)
        self._pending: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()  # ties on the due time never compare the rest
        self._wake = threading.Condition()
        self._stopping = False
        self.posted = self.failed = 0
        self._thread = threading.Thread(target=self._run, name="labels", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, id_: str, label: int) -> None:
        with self._wake:
            due = time.monotonic() + self.delay
            heapq.heappush(self._pending, (due, next(self._order), id_, label))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _due(self) -> list[dict[str, Any]] | None:
        """The labels due now, once any is; None when stopping."""
        with self._wake:
            while not self._stopping:
                now = time.monotonic()
                if self._pending and self._pending[0][0] <= now:
                    due = []
                    while self._pending and self._pending[0][0] <= now:
                        _, _, id_, label = heapq.heappop(self._pending)
                        due.append({"id": id_, "label": label})
                    return due
                self._wake.wait(self._pending[0][0] - now if self._pending else None)
            return None

    def _run(self) -> None:
        while (due := self._due()) is not None:
            try:
                self._client.labels(due)  # stamped with the time they are sent
                self.posted += len(due)
            except FeedbackError as error:
                self.failed += len(due)
                print(f"labels: {len(due)} refused: {error}", flush=True)


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
        labels: LabelFeed | None = None,
    ) -> None:
        """``servers``: version -> its server; the test may add servers while this runs.
        ``example``: what each request carries, for servers of a real model.
        ``label_delay``: how late the servers count their own labels. ``labels``: where
        the truth of each answered request goes, and how late; each request then carries
        an id and the truth (the example's, else a fair coin's)."""
        self.reader, self.servers, self.rates = reader, servers, dict(rates)
        self.refresh = refresh
        self.seed = seed
        self._extra = {} if label_delay is None else {"label_delay": label_delay}
        self._example = example
        self._labeller = Labeller(labels) if labels is not None else None
        self._run_id = uuid.uuid4().hex[:8]  # ids unique across generators and runs
        self._ids = itertools.count()
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
            threading.Thread(target=self._work, args=(i,), name=f"traffic-{i}", daemon=True)
            for i in range(workers)
        ]

    @property
    def timeline(self) -> list[Observation]:
        """Every change of the weights, in order; the first entry is the first read."""
        with self._lock:
            return list(self._timeline)

    def stats(self) -> Stats:
        labeller = self._labeller
        with self._lock:
            return Stats(
                elapsed=(self._stopped or time.monotonic()) - self._started,
                delivered=dict(self._delivered),
                failed=dict(self._failed),
                unrouted=self._unrouted,
                dropped=self._dropped,
                read_errors=self._read_errors,
                last_read_error=self._last_read_error,
                labelled=labeller.posted if labeller else 0,
                label_errors=labeller.failed if labeller else 0,
            )

    def start(self) -> None:
        self._started = time.monotonic()
        if self._labeller is not None:
            self._labeller.start()
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
        if self._labeller is not None:
            self._labeller.stop()

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

    def _work(self, worker: int) -> None:
        """Sends queued requests, over one keep-alive connection per server."""
        connections: dict[int, http.client.HTTPConnection] = {}
        truths = random.Random(f"{self.seed}/truth/{worker}")
        while (item := self._queue.get()) is not None:
            if self._stopping.is_set():
                continue
            version, slice_ = item
            server = self.servers.get(version)
            body = self._body(slice_, truths)
            ok = server is not None and self._send(connections, server, body)
            with self._lock:
                (self._delivered if ok else self._failed)[version] += 1
            if ok and self._labeller is not None:
                assert isinstance(body, dict)
                self._labeller.add(body["id"], body["label"])
        for connection in connections.values():
            connection.close()

    def _body(self, slice_: str, truths: random.Random) -> bytes | dict[str, Any]:
        """The request: the same bytes per slice, unless it carries an example or an id."""
        if self._example is None and self._labeller is None:
            return self._bodies[slice_]
        body = {"slice": slice_, **self._extra}
        if self._example is not None:
            body |= self._example(slice_)
        if self._labeller is not None:
            body["id"] = f"{self._run_id}-{next(self._ids)}"
            body.setdefault("label", int(truths.random() < 0.5))
        return body

    def _send(
        self,
        connections: dict[int, http.client.HTTPConnection],
        server: ModelServer,
        body: bytes | dict[str, Any],
    ) -> bool:
        connection = connections.get(server.port)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            connections[server.port] = connection
        try:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            connection.request("POST", "/predict", data)
            response = connection.getresponse()
            answer = json.loads(response.read()) if response.status == 200 else {}
        except (OSError, ValueError, http.client.HTTPException):
            connection.close()  # it reconnects on the next request
            return False
        return bool(answer.get("version") == server.version)

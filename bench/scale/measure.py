"""What a scale run reads, and how: the operator process from /proc, the counters of the
operator's and the API server's /metrics, and the Models and Deployments through two
watches of the run's own, whose events are stamped as they arrive.

The harness shares the machine with what it measures: the watches parse one JSON line
per event and keep a few numbers per Model, and /metrics are read only at the edges of
a window (the API server's is filtered line by line, never parsed whole).
"""

import contextlib
import http.client
import json
import math
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from modelloop.api.vocabulary import LABEL_MODEL
from modelloop.conditions import find
from modelloop.kube.delivery import written_at
from modelloop.kube.rest import FIELD_MANAGER

from .world import edited, model_edited

Obj = dict[str, Any]
Labels = tuple[tuple[str, str], ...]
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
EVALUATION = "modelloop_evaluation_duration_seconds"
QUEUE_WAIT = "modelloop_workqueue_wait_seconds"
WATCH_DELAY = "modelloop_watch_delay_seconds"
RECONCILE = "modelloop_reconcile_duration_seconds"


# --------------------------------------------------------------------------- the process


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM): resident now and at its peak."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def reset_peak(pid: int) -> None:
    """Start ``pid``'s VmHWM again from its VmRSS (Linux's ``clear_refs`` 5), so that the
    next reading's peak is one of what came since: a peak per phase."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --------------------------------------------------------------------------- /metrics


def clear_of_relists(
    now: float, leading_since: list[float], period: float, window: float, margin: float
) -> float:
    """The earliest start, from ``now``, of a window of ``window`` seconds that no
    operator's full relist falls in: each relists every ``period`` seconds from when it
    began to lead, and a relist is given ``margin`` seconds to end. A relist is periodic
    work, not the work at rest: inside the steady window it adds its whole cost to it.
    ``now`` itself when no such window comes within a period (many operators)."""
    start = now
    moved = True
    while moved:
        moved = False
        for since in leading_since:
            # The first relist after the window's start less the margin.
            relist = since + period * max(1, math.floor((start - margin - since) / period) + 1)
            if relist <= start + window:
                start, moved = relist + margin, True
        if start - now > period:
            return now
    return start


def counters(text: str, name: str) -> dict[Labels, float]:
    """Every sample of one metric in a Prometheus text exposition, by its labels."""
    found: dict[Labels, float] = {}
    for line in text.splitlines():
        if not line.startswith(name) or line[len(name) : len(name) + 1] not in ("{", " "):
            continue
        head, _, value = line.rpartition(" ")
        found[tuple(sorted(_LABEL.findall(head)))] = float(value)
    return found


def summed(samples: dict[Labels, float], *by: str) -> dict[str, float]:
    """Samples summed by some of their labels, keyed by those labels' values joined by ' '."""
    sums: dict[str, float] = {}
    for labels, value in samples.items():
        values = dict(labels)
        key = " ".join(values.get(label, "") for label in by)
        sums[key] = sums.get(key, 0.0) + value
    return sums


@dataclass(frozen=True)
class Reading:
    """The counters at one instant; windows are differences of two readings."""

    at: float  # time.monotonic()
    cpu_seconds: float  # the operator's
    harness_cpu_seconds: float  # this process's own
    apiserver_cpu_seconds: float
    control_plane_cpu_seconds: float  # etcd, the API server, the controllers, kwok
    api_requests: dict[str, float]  # "verb resource"
    watch_events: dict[str, float]  # resource
    prometheus_requests: float
    status_patches: float
    evaluation_seconds: float  # wall time of the evaluation cycles so far
    evaluation_cycles: float
    queue_waits: dict[str, float]  # the wait histogram's cumulative buckets, by "lane le"
    queue_wait_seconds: dict[str, float]  # summed over every reconcile so far, by lane
    # The watch delay histogram's cumulative buckets, by "resource le": how late the
    # API server's events reached the operator after their writes.
    watch_delays: dict[str, float]
    reconciles: float
    reconcile_seconds: float
    apiserver_requests: dict[str, float]  # verb
    # The API server's time answering, summed, and its answers, by "VERB resource" (the
    # subresource after a slash): which kind of request a loaded server is slow at.
    apiserver_seconds: dict[str, float]
    apiserver_answers: dict[str, float]
    load_average: float  # the machine's, over the last minute


def restarted(reading: Reading, at: float) -> Reading:
    """The reading a new operator process starts from at ``at``: its own counters at
    zero (it counts from nothing), the machine's as ``reading`` had them."""
    return replace(
        reading,
        at=at,
        cpu_seconds=0.0,
        api_requests={},
        watch_events={},
        prometheus_requests=0.0,
        status_patches=0.0,
        evaluation_seconds=0.0,
        evaluation_cycles=0.0,
        queue_waits={},
        queue_wait_seconds={},
        watch_delays={},
        reconciles=0.0,
        reconcile_seconds=0.0,
    )


def combined(readings: list[Reading]) -> Reading:
    """Several operators' readings (shards) as one: their own counters summed; the API
    server, the control plane and the machine are the same for all."""
    first = readings[0]

    def added(field_: str) -> dict[str, float]:
        total: dict[str, float] = {}
        for reading in readings:
            for key, value in getattr(reading, field_).items():
                total[key] = total.get(key, 0.0) + value
        return total

    return Reading(
        at=max(r.at for r in readings),
        cpu_seconds=sum(r.cpu_seconds for r in readings),
        harness_cpu_seconds=first.harness_cpu_seconds,
        apiserver_cpu_seconds=first.apiserver_cpu_seconds,
        control_plane_cpu_seconds=first.control_plane_cpu_seconds,
        api_requests=added("api_requests"),
        watch_events=added("watch_events"),
        prometheus_requests=sum(r.prometheus_requests for r in readings),
        status_patches=sum(r.status_patches for r in readings),
        evaluation_seconds=sum(r.evaluation_seconds for r in readings),
        evaluation_cycles=sum(r.evaluation_cycles for r in readings),
        queue_waits=added("queue_waits"),
        queue_wait_seconds=added("queue_wait_seconds"),
        watch_delays=added("watch_delays"),
        reconciles=sum(r.reconciles for r in readings),
        reconcile_seconds=sum(r.reconcile_seconds for r in readings),
        apiserver_requests=first.apiserver_requests,
        apiserver_seconds=first.apiserver_seconds,
        apiserver_answers=first.apiserver_answers,
        load_average=first.load_average,
    )


APISERVER_TOTAL = "apiserver_request_total"
APISERVER_DURATION = (
    "apiserver_request_duration_seconds_sum",
    "apiserver_request_duration_seconds_count",
)


def by_request(samples: dict[Labels, float]) -> dict[str, float]:
    """Summed by "VERB resource[/subresource]"; watches (open for minutes) left out."""
    sums: dict[str, float] = {}
    for labels, value in samples.items():
        values = dict(labels)
        if values.get("verb") in ("WATCH", "CONNECT"):
            continue
        key = f"{values.get('verb', '')} {values.get('resource', '')}"
        if values.get("subresource"):
            key += f"/{values['subresource']}"
        sums[key] = sums.get(key, 0.0) + value
    return sums


class Scraper:
    """Reads the operator process and the two /metrics endpoints."""

    def __init__(
        self,
        pid: int,
        operator_metrics: str,
        apiserver: "ApiServer",
        control_plane: dict[str, int],
    ) -> None:
        """``control_plane``: its processes' pids by name (kube-apiserver among them)."""
        self.pid, self.operator_metrics, self.apiserver = pid, operator_metrics, apiserver
        self.control_plane = control_plane

    def operator_text(self, *names: str) -> str:
        """The operator's /metrics; with ``names``, the samples of those names alone."""
        query = f"?{urlencode([('name[]', n) for n in names])}" if names else ""
        with urllib.request.urlopen(self.operator_metrics + query, timeout=10) as response:
            return str(response.read().decode())

    def reconciles(self) -> float:
        """The operator's reconciles so far, from its one counter: the operator renders
        nothing else and the API server is not asked, so a poll of it costs neither."""
        name = f"{RECONCILE}_count"
        return sum(counters(self.operator_text(name), name).values())

    def read(self) -> Reading:
        text = self.operator_text()
        apiserver = self.apiserver.get_lines("/metrics", APISERVER_TOTAL, *APISERVER_DURATION)
        return Reading(
            at=time.monotonic(),
            cpu_seconds=cpu_seconds(self.pid),
            harness_cpu_seconds=time.process_time(),
            apiserver_cpu_seconds=cpu_seconds(self.control_plane["kube-apiserver"]),
            control_plane_cpu_seconds=sum(map(cpu_seconds, self.control_plane.values())),
            api_requests=summed(counters(text, "modelloop_api_requests_total"), "verb", "resource"),
            watch_events=summed(counters(text, "modelloop_watch_events_total"), "resource"),
            prometheus_requests=sum(counters(text, "modelloop_prometheus_requests_total").values()),
            status_patches=sum(counters(text, "modelloop_status_patches_total").values()),
            evaluation_seconds=sum(counters(text, f"{EVALUATION}_sum").values()),
            evaluation_cycles=sum(counters(text, f"{EVALUATION}_count").values()),
            queue_waits=summed(counters(text, f"{QUEUE_WAIT}_bucket"), "lane", "le"),
            queue_wait_seconds=summed(counters(text, f"{QUEUE_WAIT}_sum"), "lane"),
            watch_delays=summed(counters(text, f"{WATCH_DELAY}_bucket"), "resource", "le"),
            reconciles=sum(counters(text, f"{RECONCILE}_count").values()),
            reconcile_seconds=sum(counters(text, f"{RECONCILE}_sum").values()),
            apiserver_requests=summed(counters(apiserver, APISERVER_TOTAL), "verb"),
            apiserver_seconds=by_request(counters(apiserver, APISERVER_DURATION[0])),
            apiserver_answers=by_request(counters(apiserver, APISERVER_DURATION[1])),
            load_average=os.getloadavg()[0],
        )


# --------------------------------------------------------------------------- the API server


class ApiServer:
    """HTTPS to the API server as the admin kubeconfig's client certificate."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        self.tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self.tls.load_cert_chain(user["client-certificate"], user["client-key"])
        parts = urlsplit(cluster["server"])
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443

    def connect(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=timeout)

    def get_lines(self, path: str, *prefixes: str) -> str:
        """The lines of a text response that start with one of ``prefixes``."""
        connection = self.connect(30)
        wanted = tuple(prefix.encode() for prefix in prefixes)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            kept = [line.decode() for line in response if line.startswith(wanted)]
        finally:
            connection.close()
        return "".join(kept)

    def _get(self, path: str, timeout: float, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = self.connect(timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get_bytes(self, path: str, seconds: float) -> bytes:
        """A response's body, for a request the server answers after ``seconds``."""
        status, body = self._get(path, seconds + 60, {})
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return body

    def get_json(self, path: str) -> Obj:
        status, raw = self._get(path, 60, {"Accept": "application/json"})
        body: Obj = json.loads(raw)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body.get('message')}")
        return body


class Watch:
    """List then watch one collection on a thread; ``on_event(type, object, arrival)`` for
    every object listed (as ADDED) and every event after. Resumes from the last resource
    version when the server ends the watch, lists again when that version is gone."""

    def __init__(
        self,
        api: ApiServer,
        path: str,
        selector: str,
        on_event: Callable[[str, Obj, float], None],
    ) -> None:
        self.api, self.path, self.selector, self.on_event = api, path, selector, on_event
        self._stopped = threading.Event()
        self._connection: http.client.HTTPSConnection | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)
        self._thread.start()

    def _query(self, **more: str) -> str:
        return urlencode({"labelSelector": self.selector, **more})

    def _run(self) -> None:
        version: str | None = None
        while not self._stopped.is_set():
            try:
                if version is None:
                    listed = self.api.get_json(f"{self.path}?{self._query()}")
                    for item in listed["items"]:
                        self.on_event("ADDED", item, time.monotonic())
                    version = str(listed["metadata"]["resourceVersion"])
                version = self._stream(version)
            except (OSError, http.client.HTTPException, RuntimeError, ValueError):
                if not self._stopped.wait(1.0):
                    continue

    def _stream(self, version: str) -> str | None:
        """Events until the server ends the watch: the version to resume from (None: list
        again)."""
        query = self._query(
            watch="1", resourceVersion=version, allowWatchBookmarks="true", timeoutSeconds="600"
        )
        self._connection = connection = self.api.connect(700)
        try:
            connection.request("GET", f"{self.path}?{query}")
            response = connection.getresponse()
            if response.status != 200:
                return None
            for line in response:
                arrival = time.monotonic()
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    return None  # 410 Gone: the version was compacted away
                version = str(obj["metadata"]["resourceVersion"])
                if event["type"] != "BOOKMARK":
                    self.on_event(event["type"], obj, arrival)
            return version
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        connection = self._connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


# --------------------------------------------------------------------------- the fleet


def _in_breach(status: Obj) -> bool:
    healthy = find(status.get("conditions") or [], "Healthy") or {}
    return (healthy.get("status"), healthy.get("reason")) == ("False", "Breach")


def _conclusive(status: Obj) -> bool:
    """Its Healthy condition says True or False: it was evaluated on the metrics' values."""
    healthy = find(status.get("conditions") or [], "Healthy") or {}
    return healthy.get("status") in ("True", "False")


def _available(deployment: Obj) -> bool:
    """Its Available condition True: what the operator's Ready waits for."""
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


@dataclass
class Fleet:
    """What the watches saw of the run's Models and Deployments: which Model is Ready and
    since when, which rolls a canary, and when each Deployment showed the edit asked."""

    models: int
    applied: dict[str, float] = field(default_factory=dict)  # Model -> when its apply began
    ready: dict[str, float] = field(default_factory=dict)  # Model -> when it last became Ready
    # The apply's stages, Model -> when the harness first saw: a Deployment of it (the
    # operator's write), one Available (the controllers' and kwok's work), as ``ready``
    # the Model Ready (the operator's status write).
    deployed: dict[str, float] = field(default_factory=dict)
    available: dict[str, float] = field(default_factory=dict)
    canaries: set[str] = field(default_factory=set)
    deployments: dict[str, str] = field(default_factory=dict)  # Deployment -> its Model
    token: str | None = None
    updated: dict[str, float] = field(default_factory=dict)  # Deployment -> when it showed token
    # Deployment -> the wall time of the operator's write that carried the token, as the
    # API server stamped it (managedFields: to the second, so its middle), and how long
    # after it the harness's watch got it: the operator's part of a latency and the
    # control plane's delivery told apart.
    written: dict[str, float] = field(default_factory=dict)
    delivered: dict[str, float] = field(default_factory=dict)
    # Model -> when the harness's watch first showed its edit: what the API server's
    # delivery of the edit took, which the operator's watch waits for as well.
    edit_seen: dict[str, float] = field(default_factory=dict)
    # Since expect_breaches: Model -> when it was first seen in breach (Healthy False,
    # reason Breach), and Model -> its training Jobs, each with when it was first seen.
    breached: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, dict[str, float]] = field(default_factory=dict)
    watching_breaches: bool = False
    conclusive: set[str] = field(default_factory=set)  # Models whose Healthy is True or False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_model(self, type_: str, obj: Obj, arrival: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        is_ready = type_ != "DELETED" and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        with self.lock:
            if not is_ready:
                self.ready.pop(name, None)
            elif name not in self.ready:
                self.ready[name] = arrival
            if type_ != "DELETED" and status.get("canary"):
                self.canaries.add(name)
            else:
                self.canaries.discard(name)
            if type_ != "DELETED" and _conclusive(status):
                self.conclusive.add(name)
            else:
                self.conclusive.discard(name)
            if self.watching_breaches and name not in self.breached and _in_breach(status):
                self.breached[name] = arrival
            token = self.token
            if token is not None and name not in self.edit_seen and model_edited(obj, token):
                self.edit_seen[name] = arrival

    def inconclusive(self, names: list[str]) -> list[str]:
        """Those of ``names`` whose Healthy condition is Unknown or missing now."""
        with self.lock:
            return [name for name in names if name not in self.conclusive]

    def on_applied(self, name: str) -> None:
        """The harness begins to apply Model ``name`` (its versions, then itself)."""
        with self.lock:
            self.applied[name] = time.monotonic()

    def ready_latencies(self) -> list[float]:
        """From each Model's apply to its becoming Ready, of those Ready now."""
        with self.lock:
            return [at - self.applied[m] for m, at in self.ready.items() if m in self.applied]

    def apply_stages(self) -> dict[str, list[float]]:
        """Where each Model's time to Ready went, of the Models Ready now: apply -> its
        first Deployment (the operator's), -> a Deployment Available (the control plane's),
        -> Ready (the operator's again; each stage as the harness's watches saw it)."""
        with self.lock:
            every = [
                (self.applied[m], self.deployed[m], self.available[m], self.ready[m])
                for m in self.ready
                if m in self.applied and m in self.deployed and m in self.available
            ]
        stages = ("to_deployment", "to_available", "to_ready")
        return {
            stage: [times[i + 1] - times[i] for times in every] for i, stage in enumerate(stages)
        }

    def on_job(self, type_: str, obj: Obj, arrival: float) -> None:
        """A training Job (the watch selects them by the training label)."""
        meta = obj["metadata"]
        model = (meta.get("labels") or {}).get(LABEL_MODEL, "")
        with self.lock:
            if type_ != "DELETED" and self.watching_breaches:
                self.jobs.setdefault(model, {}).setdefault(meta["name"], arrival)

    def expect_breaches(self) -> None:
        """From now on, record breaches and training Jobs (the ones before are forgotten)."""
        with self.lock:
            self.watching_breaches, self.breached, self.jobs = True, {}, {}

    def breaches(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        with self.lock:
            return dict(self.breached), {m: dict(j) for m, j in self.jobs.items()}

    def on_deployment(self, type_: str, obj: Obj, arrival: float) -> None:
        name = obj["metadata"]["name"]
        with self.lock:
            if type_ == "DELETED":
                self.deployments.pop(name, None)
                return
            model = self.deployments[name] = (obj["metadata"].get("labels") or {}).get(
                LABEL_MODEL, ""
            )
            self.deployed.setdefault(model, arrival)
            if model not in self.available and _available(obj):
                self.available[model] = arrival
            if self.token is not None and name not in self.updated and edited(obj, self.token):
                self.updated[name] = arrival
                written = written_at(obj, FIELD_MANAGER)
                if written is not None:
                    self.written[name] = written
                    self.delivered[name] = time.time() - written

    def all_ready(self) -> float | None:
        """When the last Model became Ready, once all are."""
        with self.lock:
            if len(self.ready) < self.models:
                return None
            return max(self.ready.values())

    def rolling(self) -> int:
        with self.lock:
            return len(self.canaries)

    def expect_edit(self, token: str) -> dict[str, str]:
        """From now on, record when each Deployment shows ``token``; returns the Deployments
        expected to (those that exist now) with their Model."""
        with self.lock:
            self.token = token
            self.updated, self.written, self.delivered, self.edit_seen = {}, {}, {}, {}
            return dict(self.deployments)

    def arrivals(self) -> dict[str, float]:
        with self.lock:
            return dict(self.updated)

    def edits_seen(self) -> dict[str, float]:
        """Since expect_edit: Model -> when the harness's watch first showed its edit."""
        with self.lock:
            return dict(self.edit_seen)

    def writes(self) -> tuple[dict[str, float], dict[str, float]]:
        """Since expect_edit: Deployment -> the operator's write (wall time), and how
        long that write took to reach the harness."""
        with self.lock:
            return dict(self.written), dict(self.delivered)

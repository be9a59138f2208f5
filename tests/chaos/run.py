"""The chaos run: the whole loop for several Models while the operator's HA pair is
SIGKILLed, the API server restarts and Prometheus goes down; then the invariants.

What runs: the local control plane of the tests, a real Prometheus, one churn Model per
stream (tests/chaos/models.py), the operator as two ``--leader-elect`` replicas under the
chart's RBAC, and the demo's stand-ins for the kubelet and the gateway: a model server
process per version, training pods run as local processes, and a traffic generator per
Model that obeys its HTTPRoute.

The run has three parts. Set-up: every Model serves its first version and is healthy.
Chaos: the plan's disruptions happen at their instants (tests/chaos/plan.py) while each
Model, once settled (Ready on the version its newest training made, nothing failing or in
flight) for its drawn quiet spell, drifts: the run gives its trainings the new concept,
then turns its stream, and the operator has to close the loop again. Settle: no more
drifts or disruptions; every loop in flight must close. Then the checks
(tests/chaos/invariants.py) on everything recorded (tests/chaos/record.py).
"""

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from examples.trainer.churn import SLICES
from localcluster.apply import apply, install_crds
from localcluster.chart import install_operator_identity
from localcluster.controlplane import LocalControlPlane
from localcluster.demo.pods import run_container
from localcluster.modelserver import ModelServer
from localcluster.prometheus import PrometheusServer, scrape_config
from localcluster.thirdparty import traffic_crds_dir
from localcluster.traffic import TrafficGenerator, httproute_weights

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.conditions import find
from modelloop.kube.rest import Kube
from tests.chaos import models
from tests.chaos.invariants import (
    Violation,
    events_once,
    expected_version,
    final_state,
    jobs_per_sequence,
    versions_per_training,
)
from tests.chaos.phases import failing
from tests.chaos.plan import Kill, Plan, Settings
from tests.chaos.record import Recorder
from tests.chaos.replicas import Pair, blind_replicas, refused_writes
from tests.chaos.report import Figures, KillRecord, ModelFigures, Outage
from tests.chaos.stand_ins import Poller, TrainingKubelet, VersionServers
from tests.chaos.watch import wait_all_listed

NAMESPACE = "modelloop-chaos"
TICK = 0.2
PRINT = functools.partial(print, flush=True)  # each line as it happens, also into a file


class ChaosFailed(Exception):
    """The harness could not carry the run out (not a finding about the product)."""


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Scrapes:
    """Prometheus' targets follow the model servers; a reload that fails while Prometheus
    is down is done again later (the config file is written first, so a restart reads it)."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus = prometheus
        self._targets: dict[str, str] = {}
        self._dirty = False
        self._lock = threading.Lock()

    def update(self, servers: dict[str, ModelServer]) -> None:
        with self._lock:
            self._targets = {name: server.address for name, server in servers.items()}
            self._dirty = True
        self.retry()

    def retry(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            try:
                self.prometheus.reload(scrape_config(self._targets))
            except OSError:
                return
            self._dirty = False


@dataclass
class Drifts:
    """One Model's drifts: how many, when the last one happened, since when it is settled."""

    index: int
    stream: models.Stream
    quiet: tuple[float, ...]
    count: int = 0
    last: datetime | None = None
    settled_since: float | None = None


class Chaos:
    def __init__(
        self,
        workdir: Path,
        settings: Settings,
        plan: Plan,
        say: Callable[[str], None] = PRINT,
    ) -> None:
        self.workdir, self.settings, self.plan = workdir, settings, plan
        self._print = say
        self.start = time.monotonic()
        self.cluster: LocalControlPlane | None = None
        self._kube: Kube | None = None
        self.stoppables: list[Any] = []  # stopped in reverse order
        self.pair: Pair | None = None
        self.recorder: Recorder | None = None
        self.pollers: list[Poller] = []
        self.traffic: dict[str, TrafficGenerator] = {}
        self.kills: list[KillRecord] = []
        self.outages: list[Outage] = []
        self.leaders: list[tuple[float, int]] = []  # (seconds since the chaos began, pid)
        self._restarting = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread_failures: list[BaseException] = []
        self.names = [models.model_name(i) for i in range(settings.models)]

    def say(self, source: str, message: str) -> None:
        self._print(f"[{time.monotonic() - self.start:7.1f}s] {source:<10} {message}")

    # ----------------------------------------------------------------------- set-up

    def run(self) -> Figures:
        kube = self._start_cluster()
        recorder = self.recorder = Recorder(str(self._admin_config), NAMESPACE, self.say)
        recorder.start()
        self.stoppables.append(recorder)
        wait_all_listed(recorder.watches, 60)
        prometheus = PrometheusServer(self.workdir / "prometheus", scrape_config({}))
        self.stoppables.append(prometheus)
        scrapes = Scrapes(prometheus)
        servers = VersionServers(
            kube, NAMESPACE, self.workdir / "servers", recorder.routed, scrapes.update
        )
        self.stoppables.append(servers)
        self._poll("servers", servers.poll, 0.3)
        kubelet = TrainingKubelet(kube, NAMESPACE, self.workdir / "pods")
        self._poll("kubelet", kubelet.poll, 0.3)
        uris = [self._train_first(i) for i in range(self.settings.models)]
        self._start_operators(prometheus)
        for i, uri in enumerate(uris):
            kube.create(MODELS, NAMESPACE, models.manifest(i, self.workdir / "models"))
            kube.create(MODEL_VERSIONS, NAMESPACE, models.first_version(i, uri))
        self.say("harness", f"applied {', '.join(self.names)} and their first versions")
        drifts = [
            Drifts(i, models.Stream(i, self.plan.seed), self.plan.quiet[i])
            for i in range(self.settings.models)
        ]
        for d in drifts:
            self._start_traffic(kube, servers, d.stream)
        self._wait("every Model healthy on its first version", 180, self._all_healthy)
        setup = time.monotonic() - self.start
        self.say("harness", f"set-up done in {setup:.0f}s: the chaos begins")
        chaos_start = time.monotonic()
        self._chaos(kube, prometheus, scrapes, drifts, chaos_start)
        chaos_end = time.monotonic()
        self.say("harness", "chaos over: no more drifts; waiting for every loop to close")
        closed = self._wait(
            "every Model settled",
            self.settings.settle,
            lambda: all(self._settled(d) for d in drifts),
            scrapes,
            fail=False,
        )
        settled = time.monotonic()
        outcome = "settled" if closed else "NOT settled (see the violations)"
        self.say("harness", f"{outcome} {settled - chaos_end:.0f}s after the chaos")
        return self._figures(drifts, setup, chaos_end - chaos_start, settled - chaos_end)

    @property
    def _admin_config(self) -> Path:
        assert self.cluster is not None
        return self.cluster.admin.kubeconfig

    def _start_cluster(self) -> Kube:
        self.say("harness", f"local control plane in {self.workdir} ...")
        self.cluster = LocalControlPlane(self.workdir / "cluster").start()
        kube = self._kube = Kube.from_kubeconfig(str(self._admin_config), timeout=5)
        install_crds(kube)
        install_crds(kube, traffic_crds_dir())
        install_operator_identity(self.cluster, self.workdir)
        apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        return kube

    def _poll(self, name: str, poll: Callable[[], None], interval: float) -> None:
        poller = Poller(name, poll, interval).start()
        self.pollers.append(poller)
        self.stoppables.append(poller)

    def _train_first(self, index: int) -> str:
        """The Model's first version: the example trainer on the last minute of its stream."""
        name = models.model_name(index)
        output = self.workdir / "models" / name / "1"
        end = datetime.now(UTC)
        env = {
            "MODELLOOP_MODEL": name,
            "MODELLOOP_DATA_START": stamp(end - timedelta(minutes=1)),
            "MODELLOOP_DATA_END": stamp(end),
            "MODELLOOP_OUTPUT_URI": f"file://{output}",
            "CHURN_CONCEPT": models.concept(index, 0).to_json(),
        }
        container = {
            "image": models.TRAINER,
            "env": [{"name": k, "value": v} for k, v in env.items()],
        }
        done = run_container(container, self.workdir / "pods", f"train-{name}-v1")
        if done.code != 0:
            raise ChaosFailed(f"training {name}-v1 failed ({done.code}): {done.message}")
        return f"file://{output}"

    def _start_operators(self, prometheus: PrometheusServer) -> None:
        assert self.cluster is not None
        providers = self.workdir / "providers.yaml"
        providers.write_text(
            yaml.safe_dump({"providers": [{"name": "default", "url": prometheus.url}]})
        )
        self.pair = Pair(
            self.cluster.operator.kubeconfig,
            self.workdir / "logs",
            NAMESPACE,
            (f"--providers={providers}",),
        ).start()
        self.stoppables.append(self.pair)
        pids = ", ".join(str(r.process.pid) for r in self.pair.replicas)
        self.say("harness", f"operator replicas a and b (pids {pids}) with --leader-elect")

    def _start_traffic(self, kube: Kube, servers: VersionServers, stream: models.Stream) -> None:
        name = models.model_name(stream.index)
        first = f"{name}-v1"
        reader = httproute_weights(kube, NAMESPACE, name)
        self._wait(f"{first} routed and served", 90, lambda: first in servers.servers and reader())
        rates = dict.fromkeys(SLICES, self.settings.rate)
        traffic = TrafficGenerator(
            reader,
            servers.servers,
            rates,
            seed=self.plan.seed + stream.index,
            example=stream.example,
        )
        traffic.start()
        self.traffic[name] = traffic
        self.stoppables.append(traffic)

    # ----------------------------------------------------------------------- chaos

    def _chaos(
        self,
        kube: Kube,
        prometheus: PrometheusServer,
        scrapes: Scrapes,
        drifts: list[Drifts],
        start: float,
    ) -> None:
        assert self.pair is not None
        plan = self.plan
        for at in plan.apiserver_restarts:
            self._later(start, at, self._restart_apiserver, at)
        down, up = plan.prometheus_down
        self._later(start, down, self._prometheus_down, prometheus, down, up, start)
        kills = list(plan.kills)
        next_lease = 0.0
        while True:
            now = time.monotonic() - start
            while kills and kills[0].at <= now:
                self._kill(kube, kills.pop(0), now)
            if now >= next_lease:
                self._note_leader(kube, now)
                next_lease = now + 1.0
            for d in drifts:
                self._maybe_drift(kube, d, now)
            self._check_harness(scrapes)
            if not kills and now >= plan.end and not any(t.is_alive() for t in self._threads):
                return
            time.sleep(TICK)

    def _later(self, start: float, at: float, action: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            time.sleep(max(0.0, start + at - time.monotonic()))
            try:
                action(*args)
            except BaseException as error:
                self._thread_failures.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _restart_apiserver(self, planned: float) -> None:
        assert self.cluster is not None
        self.say("chaos", "kube-apiserver: SIGKILL, restart")
        began = time.monotonic()
        self._restarting.set()
        try:
            self.cluster.restart_apiserver(down=1.0)
        finally:
            self._restarting.clear()
        self.outages.append(Outage("kube-apiserver", planned, time.monotonic() - began))
        self.say("chaos", f"kube-apiserver ready again after {time.monotonic() - began:.1f}s")

    def _prometheus_down(
        self, prometheus: PrometheusServer, down: float, up: float, start: float
    ) -> None:
        self.say("chaos", "Prometheus: stopped")
        began = time.monotonic()
        prometheus.stop()
        time.sleep(max(0.0, start + up - time.monotonic()))
        prometheus.start_again()
        self.outages.append(Outage("Prometheus", down, time.monotonic() - began))
        self.say("chaos", f"Prometheus: serving again after {time.monotonic() - began:.1f}s")

    def _kill(self, kube: Kube, kill: Kill, now: float) -> None:
        assert self.pair is not None
        assert self.recorder is not None
        holder = self._holder(kube)
        phases = {name: self.recorder.phase(name) for name in self.names}
        pid = self.pair.kill(kill.replica)
        if holder is None:
            role = "unknown"  # the Lease could not be read
        elif holder == pid:
            role = "leader"
        elif self.pair.live(holder) is not None:
            role = "standby"
        else:
            role = "leaderless"  # the Lease names a dead replica: it has not expired yet
        self.kills.append(KillRecord(kill.at, now, "ab"[kill.replica], pid, role, phases))
        shown = ", ".join(f"{n}: {p}" for n, p in phases.items())
        self.say("chaos", f"SIGKILL operator-{'ab'[kill.replica]} pid {pid} ({role}); {shown}")

    def _holder(self, kube: Kube) -> int | None:
        assert self.pair is not None
        try:
            return self.pair.holder(kube)
        except Exception:  # the API server is restarting: unknown
            return None

    def _note_leader(self, kube: Kube, now: float) -> None:
        assert self.pair is not None
        self.pair.supervise()
        pid = self._holder(kube)
        if self.pair.live(pid) is None or pid is None:
            return
        if not self.leaders or self.leaders[-1][1] != pid:
            self.leaders.append((now, pid))

    def _maybe_drift(self, kube: Kube, d: Drifts, now: float) -> None:
        if now >= self.plan.end:
            return
        if not self._settled(d):
            d.settled_since = None
            return
        d.settled_since = d.settled_since if d.settled_since is not None else now
        if now - d.settled_since < d.quiet[d.count % len(d.quiet)]:
            return
        name = models.model_name(d.index)
        try:
            kube.merge_patch(MODELS, NAMESPACE, name, models.job_env_patch(d.index, d.count + 1))
        except Exception:  # the API server is restarting: next tick
            return
        d.stream.turn()
        d.count += 1
        d.last = datetime.now(UTC)
        d.settled_since = None
        self.say("stream", f"{name}: the concept of {models.drifting_slice(d.index)} turns")

    def _settled(self, d: Drifts) -> bool:
        """Ready on the version its newest training made, nothing failing or in flight."""
        assert self.recorder is not None
        name = models.model_name(d.index)
        body, versions = self.recorder.snapshot(name)
        expected = expected_version(name, self.recorder.all_trainings().values())
        expected_body = next((v for v in versions if v["metadata"]["name"] == expected), None)
        if final_state(name, body, expected, expected_body, d.last):
            return False
        status = (body or {}).get("status") or {}
        healthy = find(status.get("conditions") or [], "Healthy") or {}
        return healthy.get("status") == "True" and not failing(status)

    def _all_healthy(self) -> bool:
        assert self.recorder is not None
        for name in self.names:
            body, _ = self.recorder.snapshot(name)
            status = (body or {}).get("status") or {}
            healthy = find(status.get("conditions") or [], "Healthy") or {}
            ready = find(status.get("conditions") or [], "Ready") or {}
            if healthy.get("status") != "True" or ready.get("status") != "True":
                return False
        return True

    def _check_harness(self, scrapes: Scrapes | None = None) -> None:
        if scrapes is not None:
            scrapes.retry()
        for poller in self.pollers:
            if poller.failure is not None:
                raise ChaosFailed(f"the harness failed: {poller.failure!r}") from poller.failure
        if self.recorder is not None and self.recorder.failure() is not None:
            raise ChaosFailed(f"a watch failed: {self.recorder.failure()!r}")
        if self._thread_failures:
            raise ChaosFailed(f"a disruption failed: {self._thread_failures[0]!r}")
        if self.cluster is not None and not self._restarting.is_set():
            self.cluster.check_running()

    def _wait(
        self,
        what: str,
        timeout: float,
        done: Callable[[], object],
        scrapes: Scrapes | None = None,
        fail: bool = True,
    ) -> bool:
        """Whether ``done`` came true within ``timeout``; ChaosFailed when not, if ``fail``."""
        deadline = time.monotonic() + timeout
        while not done():
            self._check_harness(scrapes)
            if self.pair is not None:
                self.pair.supervise()
            if time.monotonic() > deadline:
                if fail:
                    raise ChaosFailed(f"no {what} within {timeout:g}s")
                return False
            time.sleep(TICK)
        return True

    # ----------------------------------------------------------------------- the end

    def _figures(self, drifts: list[Drifts], setup: float, chaos: float, settle: float) -> Figures:
        assert self.recorder is not None
        assert self.pair is not None
        recorder = self.recorder
        trainings = recorder.all_trainings()
        violations: list[Violation] = list(recorder.violations)
        violations += jobs_per_sequence(recorder.jobs.values(), trainings)
        violations += versions_per_training(recorder.versions_seen.values(), trainings)
        violations += events_once(recorder.events)
        logs = [replica.process.log_text() for replica in self.pair.replicas]
        for replica, log in zip(self.pair.replicas, logs, strict=True):
            violations += blind_replicas(replica.slot, log)
        violations += refused_writes(logs)
        per_model = []
        for d in drifts:
            name = models.model_name(d.index)
            body, versions = recorder.snapshot(name)
            expected = expected_version(name, trainings.values())
            expected_body = next((v for v in versions if v["metadata"]["name"] == expected), None)
            violations += final_state(name, body, expected, expected_body, d.last)
            mine = [t for t in trainings.values() if t.model == name]
            per_model.append(
                ModelFigures(
                    name,
                    models.drifting_slice(d.index),
                    d.count,
                    sum(t.outcome == "Succeeded" for t in mine),
                    sum(t.outcome == "Failed" for t in mine),
                    {reason: n for (model, reason), n in recorder.reasons.items() if model == name},
                    ((body or {}).get("status") or {}).get("stableVersion"),
                    expected,
                    self.traffic[name].stats(),
                )
            )
        return Figures(
            seed=self.plan.seed,
            settings=self.settings,
            setup=setup,
            chaos=chaos,
            settle=settle,
            kills=self.kills,
            leaders=self.leaders,
            exits=[e.last_line for e in self.pair.exits],
            outages=self.outages,
            models=per_model,
            jobs=len(recorder.jobs),
            trainings=len(trainings),
            versions=len(recorder.versions_seen),
            route_revisions=recorder.route_revisions,
            model_revisions=recorder.model_revisions,
            streaks=recorder.clocks.streaks,
            streak_comparisons=recorder.clocks.compared,
            events=len(recorder.events),
            gaps=recorder.gaps,
            violations=violations,
        )

    def close(self) -> None:
        for thing in reversed(self.stoppables):
            thing.stop()
        if self._kube is not None:
            self._kube.close()
        if self.cluster is not None:
            self.cluster.stop()

    def operator_logs(self) -> list[Path]:
        return sorted((self.workdir / "logs").glob("operator-*.log"))

"""The operator as an HA pair: two ``--leader-elect`` processes on one Lease, each
replaced at once when it dies, as a Deployment's ReplicaSet would (without the kubelet's
back-off). A replica that exits on its own — a leader that could not renew its Lease
while the API server was down exits on purpose — is counted apart from the kills."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.chart import OPERATOR_NAMESPACE, RELEASE
from localcluster.operator_process import start_operator
from localcluster.processes import Process

from modelloop.api.vocabulary import GROUP
from modelloop.control.leader import LEASES
from modelloop.kube.rest import Kube
from tests.chaos.invariants import Violation

LEASE = f"{OPERATOR_NAMESPACE}/{RELEASE}"  # the one the chart's Role names
STARTING = "Starting Kopf"  # the first line of each incarnation in a replica's log
UNRESOLVED = "Unresolved resources cannot be served"
SELECTOR = re.compile(r"Selector\(group='([^']*)', version='[^']*', (?:any_name|kind)='([^']+)'\)")
# What every cluster serves the operator. The integrations' kinds (KServe's
# InferenceService, Kubeflow's and KubeRay's training jobs) are absent where those are
# not installed, as in the chaos run: kopf naming them unresolved is expected there.
REQUIRED_GROUPS = frozenset({"", "apps", "batch", GROUP})
REFUSED = r"KubeError: 422 Invalid: (.*)$"


@dataclass
class Exited:
    """A replica that ended without being killed, and the last line it logged."""

    replica: int
    pid: int
    last_line: str


@dataclass
class Replica:
    slot: int
    process: Process


@dataclass
class Pair:
    kubeconfig: Path
    logs: Path
    namespace: str
    args: tuple[str, ...]
    replicas: list[Replica] = field(default_factory=list)
    exits: list[Exited] = field(default_factory=list)

    def start(self) -> "Pair":
        self.replicas = [Replica(slot, self._start(slot)) for slot in range(2)]
        return self

    def _start(self, slot: int) -> Process:
        return start_operator(
            self.kubeconfig,
            self.logs,
            [self.namespace],
            name=f"operator-{'ab'[slot]}",
            args=(f"--leader-elect={LEASE}", *self.args),
            # A replica that hangs can be asked for its threads: kill -ABRT.
            env={"MODELLOOP_NAMESPACE": OPERATOR_NAMESPACE, "PYTHONFAULTHANDLER": "1"},
        )

    def kill(self, slot: int) -> int:
        """SIGKILL one replica and start its replacement; returns the killed pid."""
        replica = self.replicas[slot]
        pid = replica.process.pid
        replica.process.kill()
        self._replace(replica)
        return pid

    def _replace(self, replica: Replica) -> None:
        replica.process = self._start(replica.slot)

    def supervise(self) -> None:
        """Replace a replica that exited on its own."""
        for replica in self.replicas:
            process = replica.process
            if not process.running:
                lines = process.log_tail(1)
                self.exits.append(Exited(replica.slot, process.pid, lines))
                self._replace(replica)

    def holder(self, kube: Kube) -> int | None:
        """The pid in the Lease's holder identity (``<host>-<pid>``): maybe a dead one's."""
        namespace, name = LEASE.split("/")
        lease = kube.get(LEASES, namespace, name) or {}
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        suffix = holder.rpartition("-")[2]
        return int(suffix) if suffix.isdigit() else None

    def live(self, pid: int | None) -> int | None:
        """The slot of the live replica with this pid."""
        return next((r.slot for r in self.replicas if r.process.pid == pid), None)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.process.stop()


def blind_replicas(slot: int, log: str) -> list[Violation]:
    """Incarnations of a replica that do not watch every kind they need: kopf resolves the
    resources once, at start-up, and one that started while the API server was coming up
    may find some missing and never watch them. Led: it held the Lease that way, so no
    replica acted on the kinds it missed; else it would have, had it been elected."""
    found = []
    for n, incarnation in enumerate(log.split(STARTING)[1:], start=1):
        unresolved = next((line for line in incarnation.splitlines() if UNRESOLVED in line), "")
        led = re.search(r"^leading as (\S+)$", incarnation, re.MULTILINE)
        code = "LeaderWithoutWatches" if led else "StandbyWithoutWatches"
        subject = f"operator-{'ab'[slot]} incarnation {n}" + (f" ({led.group(1)})" if led else "")
        kinds = [name for group, name in SELECTOR.findall(unresolved) if group in REQUIRED_GROUPS]
        if kinds:
            found.append(Violation(code, subject, {"unwatched": kinds}))
    return found


def refused_writes(logs: list[str]) -> list[Violation]:
    """Each distinct write the API server refused as invalid (422), from the replicas'
    logs: what the API accepts, the operator must be able to write back."""
    messages = sorted({m for log in logs for m in re.findall(REFUSED, log, re.MULTILINE)})
    return [Violation("WriteRefused", "operator", {"message": m}) for m in messages]

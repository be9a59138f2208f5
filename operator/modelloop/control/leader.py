"""Leader election on a coordination.k8s.io Lease, for standby replicas.

Every replica watches (kopf's handlers only queue keys); only the holder of the
Lease runs the reconcile workers and the evaluation. The holder renews the Lease
every third of its duration; a replica takes it over once it has not been renewed
for a whole duration. A leader that cannot renew in time exits, so that it stops
acting before anyone else may start — the Deployment restarts it as a standby.

The decision is pure (``claim``); ``LeaderElector`` reads and writes the Lease,
guarded by its resourceVersion, so two replicas never both win one round.
"""

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..kube.rest import Kube, KubeError, Obj, Resource

log = logging.getLogger(__name__)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Lease:
    holder: str | None
    renewed: datetime | None
    acquired: datetime | None
    transitions: int = 0


def claim(current: Lease | None, me: str, now: datetime, duration: timedelta) -> Lease | None:
    """The Lease to write to lead now, or None while another holder's is still valid."""
    if current is None:
        return Lease(me, now, now, 0)
    if current.holder == me:
        return Lease(me, now, current.acquired or now, current.transitions)
    valid = current.renewed is not None and now - current.renewed < duration
    if current.holder and valid:
        return None
    return Lease(me, now, now, current.transitions + 1)


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, MICRO).replace(tzinfo=UTC)


def _lease_of(body: Obj) -> Lease:
    spec = body.get("spec") or {}
    return Lease(
        spec.get("holderIdentity"),
        _parse(spec.get("renewTime")),
        _parse(spec.get("acquireTime")),
        int(spec.get("leaseTransitions") or 0),
    )


class LeaderElector:
    def __init__(
        self, kube: Kube, namespace: str, name: str, identity: str, duration: timedelta
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.identity, self.duration = identity, duration

    def attempt(self, now: datetime) -> bool:
        """One round: True when this replica holds the Lease after it."""
        body = self.kube.get(LEASES, self.namespace, self.name)
        wanted = claim(_lease_of(body) if body else None, self.identity, now, self.duration)
        if wanted is None:
            return False
        spec = {
            "holderIdentity": wanted.holder,
            "leaseDurationSeconds": int(self.duration.total_seconds()),
            "renewTime": now.strftime(MICRO),
            "acquireTime": (wanted.acquired or now).strftime(MICRO),
            "leaseTransitions": wanted.transitions,
        }
        try:
            if body is None:
                self.kube.create(
                    LEASES,
                    self.namespace,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name},
                        "spec": spec,
                    },
                )
            else:
                guard = {"resourceVersion": body["metadata"]["resourceVersion"]}
                self.kube.merge_patch(
                    LEASES, self.namespace, self.name, {"metadata": guard, "spec": spec}
                )
        except KubeError as error:
            if error.conflict:  # another replica wrote first this round
                return False
            raise
        return True


def default_identity() -> str:
    """The pod's name in a cluster (HOSTNAME), and the process, so two never collide."""
    return f"{os.environ.get('HOSTNAME') or os.uname().nodename}-{os.getpid()}"


async def lead(elector: LeaderElector, start: Callable[[], None]) -> None:
    """Campaign until elected, call ``start`` once, then renew; exit when renewal fails."""
    period = elector.duration.total_seconds() / 3
    log.info("waiting to lead: Lease %s/%s", elector.namespace, elector.name)
    while True:
        if await _attempt(elector):
            break
        await asyncio.sleep(period)
    log.info("leading as %s", elector.identity)
    start()
    renewed = datetime.now(UTC)
    while True:
        await asyncio.sleep(period)
        if await _attempt(elector):
            renewed = datetime.now(UTC)
        elif datetime.now(UTC) - renewed >= elector.duration - timedelta(seconds=period):
            log.error(
                "lost the Lease %s/%s: exiting to stop acting", elector.namespace, elector.name
            )
            os._exit(1)


async def _attempt(elector: LeaderElector) -> bool:
    try:
        return await asyncio.to_thread(elector.attempt, datetime.now(UTC))
    except KubeError as error:
        log.warning("leader election: %s", error)
        return False

"""A breach clock lives in the Model's status, not in the operator: a pending breach is
declared 'for' after its failing streak began, across a SIGKILL and restart of the
operator and across a leader failover, and BreachPending is announced once."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from localcluster.chart import OPERATOR_NAMESPACE, RELEASE
from localcluster.waiting import wait_for
from tests.harness.world import BAD, GOOD, PRECISION, World, model, slices, traffic

from modelloop.api.durations import parse_duration
from modelloop.control.leader import LEASES
from modelloop.kube.rest import Kube

LEASE = f"{OPERATOR_NAMESPACE}/{RELEASE}"  # the one the chart's Role names
# A breach is declared at the first evaluation once 'for' has passed.
ON_TIME = parse_duration(model({})["spec"]["evaluationInterval"]) + timedelta(seconds=3)


def entry(w: World) -> dict[str, Any]:
    return next(iter(w.status().get("verdicts") or []), {})


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC)


def pending_since(w: World) -> datetime | None:
    """When the pending breach's failing streak began, once status says so."""
    found = entry(w)
    if found.get("verdict") != "pass" or "failingSince" not in found:
        return None
    return parse(found["failingSince"])


def breach_after_streak(w: World, since: datetime, timeout: float) -> timedelta:
    """How long after the streak began the breach was declared, as status says."""
    w.await_verdicts({"precision/eu": "breach"}, timeout=timeout)
    breach = entry(w)
    assert parse(breach["failingSince"]) == since, breach
    return parse(breach["since"]) - since


def test_a_breach_is_declared_on_time_across_an_operator_restart(
    world: Callable[..., World],
) -> None:
    lasting = timedelta(seconds=20)
    metric = PRECISION | {"breach": {"for": "20s"}}
    w = world({"slices": slices("eu"), "metrics": [metric]}, traffic({"eu": GOOD}))
    w.await_verdicts({"precision/eu": "pass"})

    w.exporter.update(traffic({"eu": BAD}))
    since = wait_for(lambda: pending_since(w), 30, "a pending breach with its streak's start")
    assert since is not None
    wait_for(lambda: datetime.now(UTC) >= since + timedelta(seconds=8), 30, "8 s into the streak")
    w.operator.kill()
    restarted = datetime.now(UTC)
    w.start_operator_again()

    took = breach_after_streak(w, since, timeout=60)
    print(f"restart {restarted - since} into the streak; breach {took} after it began")
    assert took >= lasting
    # A clock restarted with the operator could not declare it before restarted + for.
    assert since + took < restarted + lasting
    assert took <= lasting + ON_TIME
    assert len(w.events("BreachPending")) == 1, w.events("BreachPending")


def holder(kube: Kube) -> str:
    lease = kube.get(LEASES, OPERATOR_NAMESPACE, RELEASE) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_a_breach_is_declared_on_time_across_a_leader_failover(
    kube: Kube, world: Callable[..., World]
) -> None:
    kube.delete(LEASES, OPERATOR_NAMESPACE, RELEASE)  # none left by an earlier run
    lasting = timedelta(seconds=30)  # longer than the Lease (15 s) takes to pass over
    metric = PRECISION | {"breach": {"for": "30s"}}
    w = world(
        {"slices": slices("eu"), "metrics": [metric]},
        traffic({"eu": GOOD}),
        operator_args=[f"--leader-elect={LEASE}"],
    )
    replicas = [w.operator, w.start_replica()]
    w.await_verdicts({"precision/eu": "pass"})
    [leader] = [r for r in replicas if holder(kube).endswith(f"-{r.pid}")]
    [standby] = [r for r in replicas if r is not leader]
    wait_for(lambda: "waiting to lead" in standby.log_text(), 30, "the standby waiting to lead")

    w.exporter.update(traffic({"eu": BAD}))
    since = wait_for(lambda: pending_since(w), 30, "a pending breach with its streak's start")
    assert since is not None
    # The Event follows the status write; a kill between the two would lose it (status
    # keeps the truth), and this test is about the clock, so the kill waits for the Event.
    wait_for(lambda: w.events("BreachPending"), 30, "the BreachPending Event")
    leader.kill()
    killed = datetime.now(UTC)

    took = breach_after_streak(w, since, timeout=90)
    print(f"leader killed {killed - since} into the streak; breach {took} after it began")
    assert "leading as" in standby.log_text()
    # The standby takes over the Lease 15 s or more after the kill: a clock started then
    # would declare the breach at least that much later.
    assert took >= lasting
    assert took <= lasting + ON_TIME
    assert len(w.events("BreachPending")) == 1, w.events("BreachPending")

"""Webhook gates on a real rollout: a confirm-promotion hook that says no holds the
promotion (at the last analysed weight) until it says yes; a rollout hook that never
answers makes analyses inconclusive, never a rollback."""

from collections.abc import Callable
from typing import Any

from localcluster.waiting import wait_for
from tests.harness.canary import CANARY, STABLE, CanaryWorld, rollout
from tests.harness.receiver import Reply, receiving

GOOD = {"mobile": 0.85, "web": 0.85}
BETTER = {"mobile": 0.95, "web": 0.95}


def canary_when(
    world: CanaryWorld, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """``status.canary`` once ``holds`` is true of it."""
    canary: dict[str, Any] | None = world.status().get("canary")
    return canary if canary is not None and holds(canary) else None


def gated(url: str, **hook: Any) -> dict[str, Any]:
    return {**rollout(), "webhooks": [{"name": "kpi", "url": url, "timeout": "2s", **hook}]}


def test_a_confirm_promotion_gate_that_says_no_holds_the_promotion_until_it_says_yes(
    canary_world: Callable[..., CanaryWorld],
) -> None:
    with receiving(Reply(409, {"reason": "conversion down 2%"})) as kpi:
        world = canary_world(
            "replicas", GOOD, BETTER, rollout=gated(kpi.url + "/kpi", type="confirm-promotion")
        )
        world.release()
        held = wait_for(
            lambda: canary_when(
                world, lambda c: c["phase"] == "WaitingForConfirmation" and len(kpi.received) >= 2
            ),
            120,
            "the promotion waits for the gate",
        )
        assert held is not None
        assert held["weight"] == 50  # the last analysed step: never 100 without a yes
        assert "webhook kpi answered 409" in held["message"]
        [record] = held["hooks"]
        assert (record["name"], record["outcome"], record["statusCode"]) == ("kpi", "fail", 409)
        asked = kpi.received[0].body
        assert (asked["type"], asked["candidate"], asked["stable"]) == (
            "confirm-promotion",
            CANARY,
            STABLE,
        )
        assert {row["slice"] for row in asked["analysis"]} == {"mobile", "web"}
        assert world.events("WaitingForConfirmation")
        assert world.status()["stableVersion"] == STABLE
        kpi.default = Reply(200, {"ok": True})
        world.await_phase(CANARY, "Serving", timeout=60)
    promoted = wait_for(lambda: world.condition("Promoted"), 30, "the Promoted condition")
    assert promoted["status"] == "True"
    assert kpi.received[-1].body["candidate"] == CANARY


def test_a_rollout_hook_that_never_answers_is_inconclusive_not_a_failure(
    canary_world: Callable[..., CanaryWorld],
) -> None:
    with receiving(Reply(200, delay=30)) as load:
        world = canary_world(
            "replicas",
            GOOD,
            BETTER,
            rollout=gated(load.url + "/load", type="rollout", timeout="1s"),
        )
        world.release()
        canary = wait_for(
            lambda: canary_when(world, lambda c: c.get("inconclusive", 0) >= 2),
            120,
            "analyses made inconclusive by the silent hook",
        )
        assert canary is not None
        assert canary["failures"] == 0
        assert canary["weight"] == 10  # no success without the hook: the step holds
        [record] = canary["hooks"]
        assert record["outcome"] == "timeout"
        assert "RolledBack" not in [
            c["type"] for c in world.status().get("conditions", []) if c["status"] == "True"
        ]

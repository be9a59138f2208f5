"""What the chaos run will do, drawn from its seed before it starts. Pure.

Deterministic for a seed: the kill instants and which replica each kill hits, when the
API server restarts and when Prometheus is down, and how long each Model stays healthy
before each of its drifts. Not deterministic, and not pretended to be: where in the loop
each instant lands (that depends on how fast the machine runs the loop), which replica
leads at that moment, and how long a takeover or an API server start takes.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """The shape of a run."""

    models: int
    kills: int
    apiserver_restarts: int
    prometheus_down: float  # seconds Prometheus is down, once
    gap: tuple[float, float]  # seconds between two kills, drawn uniformly
    quiet: tuple[float, float]  # seconds a settled Model stays healthy before it drifts
    settle: float  # seconds after the last disruption for every loop to close
    rate: float  # requests per second per slice of each Model


FULL = Settings(
    models=3,
    kills=100,
    apiserver_restarts=3,
    prometheus_down=60,
    gap=(4, 36),
    quiet=(10, 40),
    settle=600,
    rate=20,
)
SHORT = Settings(
    models=2,
    kills=15,
    apiserver_restarts=1,
    prometheus_down=20,
    gap=(3, 8),
    quiet=(3, 8),
    settle=180,
    rate=25,
)
REPLICAS = 2  # the HA pair
DRIFTS = 100  # healthy spells drawn per Model: more than any run uses
WITH_RESTART = 0.5  # seconds after an API server restart begins, a replica is killed


@dataclass(frozen=True)
class Kill:
    at: float  # seconds after the chaos starts
    replica: int  # which of the pair: they are hit in turn


@dataclass(frozen=True)
class Plan:
    seed: int
    kills: tuple[Kill, ...]
    apiserver_restarts: tuple[float, ...]  # seconds after the chaos starts
    prometheus_down: tuple[float, float]  # from, to (seconds after the chaos starts)
    quiet: tuple[tuple[float, ...], ...]  # per Model: healthy seconds before each drift

    @property
    def end(self) -> float:
        """When the last disruption has begun: the chaos window."""
        last = [self.prometheus_down[1], *self.apiserver_restarts]
        return max([k.at for k in self.kills] + last)


def make_plan(settings: Settings, seed: int) -> Plan:
    """The kills' gaps are drawn, then the kill nearest each API server restart is moved to
    it (an operator pod restarting with the control plane, as on a node reboot: its
    replacement starts while the API server comes up); the replicas are hit in turn."""
    rng = random.Random(seed)
    at, instants = 0.0, []
    first = rng.randrange(REPLICAS)
    for _ in range(settings.kills):
        at += rng.uniform(*settings.gap)
        instants.append(round(at, 2))
    window = max(at, settings.prometheus_down * 2)
    # One restart in each equal part of the window, away from its edges: spread out.
    part = window / max(1, settings.apiserver_restarts)
    restarts = tuple(
        round(part * (i + rng.uniform(0.15, 0.85)), 2) for i in range(settings.apiserver_restarts)
    )
    for restart in restarts if instants else ():
        nearest = min(range(len(instants)), key=lambda i: abs(instants[i] - restart))
        instants[nearest] = restart + WITH_RESTART
    kills = [Kill(t, (first + i) % REPLICAS) for i, t in enumerate(sorted(instants))]
    down_from = round(rng.uniform(0.1 * window, window - settings.prometheus_down), 2)
    quiet = tuple(
        tuple(round(rng.uniform(*settings.quiet), 2) for _ in range(DRIFTS))
        for _ in range(settings.models)
    )
    return Plan(
        seed,
        tuple(kills),
        restarts,
        (down_from, round(down_from + settings.prometheus_down, 2)),
        quiet,
    )

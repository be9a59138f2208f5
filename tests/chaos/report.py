"""The chaos run's figures, and their rendering as the text ``make chaos`` prints."""

import statistics
from collections import Counter
from dataclasses import dataclass

from localcluster.traffic import Stats

from tests.chaos.invariants import Violation
from tests.chaos.phases import ORDER
from tests.chaos.plan import Settings


@dataclass(frozen=True)
class KillRecord:
    planned: float  # seconds after the chaos began
    at: float
    replica: str  # a or b
    pid: int
    role: str  # leader | standby | leaderless (the Lease names a dead one) | unknown
    phases: dict[str, str]  # Model -> its phase at that instant


@dataclass(frozen=True)
class Outage:
    what: str
    planned: float  # seconds after the chaos began
    seconds: float  # until it served again


@dataclass(frozen=True)
class ModelFigures:
    name: str
    drifting: str  # the slice whose concept turns
    drifts: int
    succeeded: int
    failed: int
    events: dict[str, int]  # reason -> count
    stable: str | None
    expected: str
    traffic: Stats


@dataclass(frozen=True)
class Figures:
    seed: int
    settings: Settings
    setup: float
    chaos: float
    settle: float
    kills: list[KillRecord]
    leaders: list[tuple[float, int]]  # (seconds after the chaos began, pid) per new leader
    exits: list[str]  # last log line of each replica that exited on its own
    outages: list[Outage]
    models: list[ModelFigures]
    jobs: int
    trainings: int
    versions: int
    route_revisions: int
    model_revisions: int
    streaks: int
    streak_comparisons: int
    events: int
    gaps: dict[str, int]
    violations: list[Violation]

    def takeovers(self) -> list[float]:
        """Seconds from each leader's kill to the next leader."""
        found = []
        for kill in self.kills:
            if kill.role != "leader":
                continue
            after = [at for at, pid in self.leaders if at > kill.at and pid != kill.pid]
            if after:
                found.append(after[0] - kill.at)
        return found

    def render(self) -> str:
        s = self.settings
        lines = [
            f"Chaos run, seed {self.seed}: {len(self.models)} Models, {len(self.kills)} kills, "
            f"{s.apiserver_restarts} API server restart(s), Prometheus down {s.prometheus_down:g}s",
            f"  set-up {self.setup:.0f}s, chaos {self.chaos:.0f}s, settle {self.settle:.0f}s",
            "",
            *self._kill_lines(),
            "",
            *self._loop_lines(),
            "",
            *self._check_lines(),
        ]
        return "\n".join(lines)

    def _kill_lines(self) -> list[str]:
        roles = Counter(k.role for k in self.kills)
        replicas = Counter(k.replica for k in self.kills)
        takeovers = self.takeovers()
        lines = [
            f"Kills: {len(self.kills)} (replica a {replicas['a']}, b {replicas['b']}; "
            f"leader {roles['leader']}, standby {roles['standby']}, while no one led "
            f"{roles['leaderless']}, unknown {roles['unknown']} (Lease unreadable))",
        ]
        if takeovers:
            lines.append(
                f"  takeover after a leader's kill: median {statistics.median(takeovers):.1f}s, "
                f"max {max(takeovers):.1f}s ({len(takeovers)} measured)"
            )
        lines.append(f"  replicas that exited on their own: {len(self.exits)}")
        lines += [f"    {line}" for line in sorted(set(self.exits))]
        for outage in self.outages:
            lines.append(
                f"  {outage.what} down at +{outage.planned:.0f}s for {outage.seconds:.1f}s"
            )
        names = [m.name for m in self.models]
        lines += ["", "Where the kills landed (each Model's phase at the kill instant):"]
        lines.append(
            "  " + "phase".ljust(18) + "".join(n.rjust(10) for n in names) + "any".rjust(8)
        )
        seen = {p for k in self.kills for p in k.phases.values()}
        for phase in [p for p in ORDER if p in seen] + sorted(seen - set(ORDER)):
            counts = [sum(k.phases.get(n) == phase for k in self.kills) for n in names]
            anywhere = sum(phase in k.phases.values() for k in self.kills)
            lines.append(
                "  "
                + phase.ljust(18)
                + "".join(str(c).rjust(10) for c in counts)
                + str(anywhere).rjust(8)
            )
        return lines

    def _loop_lines(self) -> list[str]:
        lines = ["The loops:"]
        for m in self.models:
            e = m.events
            t = m.traffic
            lines.append(
                f"  {m.name} ({m.drifting} drifts): {m.drifts} drifts, trainings "
                f"{m.succeeded} succeeded / {m.failed} failed, validated {e.get('Validated', 0)}, "
                f"rejected {e.get('Rejected', 0)}, promoted {e.get('Promoted', 0)}, rolled back "
                f"{e.get('RolledBack', 0)}; serving {m.stable} (expected {m.expected})"
            )
            lines.append(
                f"    traffic: {sum(t.delivered.values())} answered, {sum(t.failed.values())} "
                f"failed, {t.unrouted} unrouted, {t.dropped} dropped, {t.read_errors} route "
                "reads failed"
            )
        return lines

    def _check_lines(self) -> list[str]:
        gaps = ", ".join(f"{k} {v}" for k, v in self.gaps.items() if v) or "none"
        codes = Counter(v.code for v in self.violations)
        lines = [
            "Checked:",
            f"  {self.jobs} training Jobs for {self.trainings} training sequence numbers",
            f"  {self.versions} ModelVersions",
            f"  {self.route_revisions} HTTPRoute revisions (weights summing to 100)",
            f"  {self.model_revisions} Model revisions: {self.streaks} failing streaks, "
            f"{self.streak_comparisons} consecutive revisions compared (breach clocks)",
            f"  {self.events} operator Events (decisions announced once)",
            f"  watch relists after an API server restart: {gaps}",
            "",
        ]
        if not self.violations:
            return [*lines, "All invariants hold."]
        lines.append(
            f"VIOLATIONS ({len(self.violations)}): "
            + ", ".join(f"{c} {n}" for c, n in sorted(codes.items()))
        )
        return lines + [f"  {v.render()}" for v in self.violations]

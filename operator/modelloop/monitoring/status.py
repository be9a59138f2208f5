"""Verdicts and conditions as they go into ``Model.status``, and the Events that
explain their changes. Pure.

Status changes only when a verdict (or its reason) does: a verdict entry keeps
the value and the sample count as of its last change, and condition messages are built from those
entries, so an evaluation that changes no verdict yields an identical status and
costs no API call. Live values go to the operator's /metrics instead.

A verdict entry also keeps what its breach rule remembers (``failingSince``,
``recent``; see ``verdicts.remembered``), so a restarted or newly elected operator
resumes every breach clock where the old one left it (``recall_states``).
"""

import math
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..conditions import condition, merge_conditions, stamp
from .evaluate import Evaluated
from .plan import SeriesKey
from .verdicts import REMEMBERED, BreachState, label_share, recalled, remembered

HEALTHY = "Healthy"
DEGRADED = "Degraded"
METRICS_UNAVAILABLE = "MetricsUnavailable"
SHOWN = 3  # verdicts named in a condition message before "and N more"


@dataclass(frozen=True)
class EventSpec:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class StatusUpdate:
    verdicts: list[dict[str, Any]]
    conditions: list[dict[str, Any]]
    events: list[EventSpec]


def _key(v: dict[str, Any]) -> tuple[str, str, str, str]:
    return (v.get("kind", "metric"), v["metric"], v["slice"], v["version"])


def _finite(value: float | None) -> bool:
    """Whether a number may go into status: the API server refuses NaN and infinities."""
    return value is not None and math.isfinite(value)


def recall_states(verdicts: list[dict[str, Any]]) -> dict[SeriesKey, BreachState]:
    """The breach states the verdict entries of a Model's status keep: where a restarted or
    newly elected operator resumes each series' breach rule."""
    return {
        SeriesKey(v.get("kind", "metric"), v["metric"], v["slice"], v["version"]): recalled(v)
        for v in verdicts
        if any(field in v for field in REMEMBERED)
    }


def describe(v: dict[str, Any]) -> str:
    """'precision on slice eu of fraud-detector-v2 = 0.71 (200 samples): 0.71 < min 0.8'."""
    what = "drift " + v["metric"] if v.get("kind") == "drift" else v["metric"]
    text = f"{what} on slice {v['slice']} of {v['version']}"
    if v.get("value") is not None:
        text += f" = {v['value']:.4g}"
    if v.get("samples") is not None:
        text += f" ({v['samples']:.0f} samples)"
    if v.get("coverage") is not None:
        text += f", labels {label_share(v['coverage'])}"
    if v.get("reason"):
        text += f": {v['reason']}"
    return text


def _listing(verdicts: list[dict[str, Any]]) -> str:
    return _join([describe(v) for v in verdicts])


def status_inputs(evaluated: list[Evaluated]) -> tuple[Hashable, ...]:
    """What ``update_status`` reads of an evaluation when no verdict changes: applied again
    to the status it made, an evaluation with the same inputs makes that status again
    (only a changed verdict's entry takes the numbers), so it need not be compared."""
    return tuple(
        (e.series, e.verdict, e.reason, e.unavailable, e.state)
        for e in evaluated
        if e.series.kind != "shift"
    )


def update_status(
    previous: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    evaluated: list[Evaluated],
    now: datetime,
    generation: int | None,
) -> StatusUpdate:
    """The status after this evaluation, and an Event per verdict change."""
    before = {_key(v): v for v in previous}
    verdicts: list[dict[str, Any]] = []
    changes: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for e in evaluated:
        if e.series.kind == "shift":
            continue  # the canary against stable: the rollout's evidence, not a verdict
        entry: dict[str, Any] = {
            "kind": e.series.kind,
            "metric": e.series.name,
            "slice": e.series.slice,
            "version": e.series.version,
            "verdict": e.verdict,
        }
        memory = remembered(e.state)
        old = before.get(_key(entry))
        if old is not None and (old.get("verdict"), old.get("reason")) == (e.verdict, e.reason):
            verdicts.append({k: v for k, v in old.items() if k not in REMEMBERED} | memory)
            continue
        entry |= {"since": stamp(now)}
        numbers = (("value", e.value), ("samples", e.samples), ("coverage", e.coverage))
        entry |= {k: v for k, v in numbers if _finite(v)}
        if e.reason:
            entry["reason"] = e.reason
        verdicts.append(entry | memory)
        changes.append((entry, old))
    return StatusUpdate(
        verdicts, _conditions(conditions, verdicts, evaluated, now, generation), _events(changes)
    )


def _events(changes: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[EventSpec]:
    """At most one Event per kind of change per evaluation, listing the verdicts with their
    numbers; a first verdict that passes is not news. A failing value that is not a breach
    yet (a pass with a reason: the rule's ``for`` or ``ofLast`` is not met) is a warning of
    its own, not a recovery."""
    kinds: tuple[tuple[str, Literal["Normal", "Warning"], str], ...] = (
        ("breach", "Warning", "Breach"),
        ("pending", "Warning", "BreachPending"),
        ("inconclusive", "Warning", "Inconclusive"),
        ("waiting", "Normal", "WaitingForLabels"),
        ("pass", "Normal", "Recovered"),
    )
    events = []
    for kind, type_, reason in kinds:
        changed = [
            describe(entry) + (f" (was {_kind(old)})" if old else "")
            for entry, old in changes
            if _kind(entry) == kind and (old is not None or kind != "pass")
        ]
        if changed:
            events.append(EventSpec(type_, reason, _join(changed)))
    return events


def _kind(entry: dict[str, Any]) -> str:
    """The verdict, with a failing pass (a breach pending) told apart."""
    verdict = str(entry["verdict"])
    return "pending" if verdict == "pass" and entry.get("reason") else verdict


def _join(lines: list[str]) -> str:
    more = len(lines) - SHOWN
    return "; ".join(lines[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _conditions(
    current: list[dict[str, Any]],
    verdicts: list[dict[str, Any]],
    evaluated: list[Evaluated],
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    breaches = [v for v in verdicts if v["verdict"] == "breach"]
    inconclusive = [v for v in verdicts if v["verdict"] == "inconclusive"]
    unreadable = {
        (e.series.kind, e.series.name, e.series.slice, e.series.version)
        for e in evaluated
        if e.unavailable
    }
    unavailable = [v for v in inconclusive if _key(v) in unreadable]
    if not verdicts:
        healthy = condition(HEALTHY, "Unknown", "NothingToEvaluate", "no metrics or drift checks")
    elif breaches:
        healthy = condition(HEALTHY, "False", "Breach", _listing(breaches))
    elif inconclusive:
        healthy = condition(HEALTHY, "Unknown", "Inconclusive", _listing(inconclusive))
    elif waiting := [v for v in verdicts if v["verdict"] == "waiting"]:
        healthy = condition(HEALTHY, "Unknown", "WaitingForLabels", _listing(waiting))
    else:
        healthy = condition(HEALTHY, "True", "AllPass", f"{len(verdicts)} verdicts pass")
    updates = [
        healthy,
        condition(DEGRADED, "True", "Breach", _listing(breaches))
        if breaches
        else condition(DEGRADED, "False", "NoBreach"),
        condition(METRICS_UNAVAILABLE, "True", "QueryFailed", _listing(unavailable))
        if unavailable
        else condition(METRICS_UNAVAILABLE, "False", "MetricsAvailable"),
    ]
    return merge_conditions(current, updates, now, generation)

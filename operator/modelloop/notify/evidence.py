"""The numbers behind a decision, as a notification carries them: taken at the call
sites from the status just written (verdicts, the canary's analysis) or the version just
judged (its gate checks), in the status' own field names. Pure.

Lists are capped (``MAX_ROWS``, failing entries first) so that a Model with hundreds of
slices still sends a message a receiver accepts; ``omitted`` counts what was left out.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..api.model import CanaryStatus, ModelSpec, TrainingRecord

Obj = dict[str, Any]
MAX_ROWS = 100
VERDICT_FIELDS = (
    "kind",
    "metric",
    "slice",
    "version",
    "verdict",
    "value",
    "samples",
    "coverage",
    "reason",
    "since",
)
# The verdict entries each evaluation Event tells of (monitoring.status names a failing
# pass, a breach not yet held long enough, "pending").
VERDICT_OF_REASON = {
    "Breach": "breach",
    "BreachPending": "pending",
    "Inconclusive": "inconclusive",
    "WaitingForLabels": "waiting",
    "Recovered": "pass",
}


def _capped(key: str, rows: Sequence[Obj]) -> Obj:
    evidence: Obj = {key: list(rows[:MAX_ROWS])}
    if len(rows) > MAX_ROWS:
        evidence["omitted"] = len(rows) - MAX_ROWS
    return evidence


def _verdict_kind(entry: Mapping[str, Any]) -> str:
    verdict = str(entry.get("verdict"))
    return "pending" if verdict == "pass" and entry.get("reason") else verdict


def _bound(spec: ModelSpec, entry: Mapping[str, Any]) -> Obj:
    """What the value is held to: the metric's objective, or the drift check's threshold."""
    if entry.get("kind") == "drift":
        drift = next((d for d in spec.drift if d.name == entry.get("metric")), None)
        return {"test": drift.test, "threshold": drift.threshold} if drift else {}
    metric = next((m for m in spec.metrics if m.name == entry.get("metric")), None)
    if metric is None or metric.objective is None:
        return {}
    return {"objective": metric.objective.to_wire()}


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        entry.get("kind", "metric"),
        entry.get("metric"),
        entry.get("slice"),
        entry.get("version"),
    )


def verdict_evidence(
    spec: ModelSpec,
    reason: str,
    verdicts: Iterable[Mapping[str, Any]],
    since: str,
    before: Iterable[Mapping[str, Any]] = (),
) -> Obj | None:
    """The verdict entries an evaluation Event tells of: those of its kind that changed at
    ``since`` (the evaluation's time, as status stamps it), each with its bound and what
    it ``was`` in ``before`` (the verdicts as last read). A recovery is the end of a
    breach: a pass after inconclusive data, or after a breach that never came (pending),
    is none."""
    wanted = VERDICT_OF_REASON.get(reason)
    if wanted is None:
        return None
    was = {_key(v): _verdict_kind(v) for v in before}
    rows = [
        {k: v[k] for k in VERDICT_FIELDS if k in v}
        | _bound(spec, v)
        | ({"was": was[_key(v)]} if _key(v) in was else {})
        for v in verdicts
        if v.get("since") == since and _verdict_kind(v) == wanted
    ]
    if wanted == "pass":
        rows = [row for row in rows if row.get("was") == "breach"]
    return _capped("verdicts", rows)


def canary_evidence(canary: CanaryStatus | None) -> Obj | None:
    """The rollout as written, and its last analysis per metric and slice."""
    if canary is None:
        return None
    wire = canary.to_wire()
    rows = sorted(wire.get("analysis") or [], key=lambda r: r["outcome"] != "fail")
    state = {k: wire[k] for k in ("version", "weight", "step", "phase") if k in wire}
    return {"canary": state} | _capped("analysis", rows)


def gate_evidence(version: str, gates: Sequence[Obj]) -> Obj:
    """A judged version's offline gate checks, failed ones first."""
    return {"version": version} | _capped("gates", sorted(gates, key=lambda g: bool(g["passed"])))


def training_evidence(record: TrainingRecord) -> Obj:
    return {"training": record.to_wire()}

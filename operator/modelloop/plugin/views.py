"""What the plugin prints, from the objects it read. Pure: tables as rows of text."""

from collections.abc import Sequence
from typing import Any

Obj = dict[str, Any]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], bold: bool = False) -> str:
    """Columns aligned like kubectl's; a bold header when printing to a terminal."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "   ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    top = line(header)
    return "\n".join([f"\033[1m{top}\033[0m" if bold else top, *(line(r) for r in rows)])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def model_row(model: Obj) -> list[str]:
    status = model.get("status") or {}
    canary = status.get("canary") or {}
    steps = ((model.get("spec") or {}).get("rollout") or {}).get("steps") or []
    step = f"{canary['step'] + 1}/{len(steps)}" if canary and steps else "-"
    return [
        model["metadata"]["name"],
        status.get("phase") or "-",
        status.get("stableVersion") or "-",
        canary.get("version") or "-",
        f"{canary.get('weight', 0)}%" if canary else "-",
        step,
        canary.get("phase") or "-",
    ]


MODEL_HEADER = ("MODEL", "PHASE", "STABLE", "CANARY", "WEIGHT", "STEP", "ROLLOUT")


def verdict_rows(model: Obj) -> list[list[str]]:
    verdicts = (model.get("status") or {}).get("verdicts") or []
    return [
        [
            v["metric"],
            v["slice"],
            v["version"],
            v["verdict"],
            _number(v.get("value")),
            _number(v.get("samples")),
            v.get("reason") or "",
        ]
        for v in sorted(verdicts, key=lambda v: (v["metric"], v["slice"], v["version"]))
    ]


VERDICT_HEADER = ("METRIC", "SLICE", "VERSION", "VERDICT", "VALUE", "SAMPLES", "WHY")


def analysis_rows(model: Obj) -> list[list[str]]:
    canary = (model.get("status") or {}).get("canary") or {}
    return [
        [
            a["metric"],
            a["slice"],
            a["outcome"],
            _number(a.get("stable")),
            _number(a.get("canary")),
            a.get("code") or "-",
            a.get("reason") or "",
        ]
        for a in canary.get("analysis") or []
    ]


ANALYSIS_HEADER = ("METRIC", "SLICE", "OUTCOME", "STABLE", "CANARY", "CODE", "WHY")


def gate_rows(version: Obj) -> list[list[str]]:
    """The offline gate's checks of one ModelVersion, with the examples behind each value
    and the noise test that judged a regression."""

    def counted(value: Any, samples: Any) -> str:
        return _number(value) + (f" ({samples})" if samples is not None else "")

    return [
        [
            g.get("gate") or "-",
            g["metric"],
            g["slice"],
            counted(g.get("candidate"), g.get("candidateSamples")),
            counted(g.get("champion"), g.get("championSamples")),
            g.get("test") or "-",
            _number(g.get("pValue")),
            "pass" if g.get("passed") else "FAIL",
            g.get("code") or "-",
        ]
        for g in (version.get("status") or {}).get("gates") or []
    ]


GATE_HEADER = (
    "GATE",
    "METRIC",
    "SLICE",
    "CANDIDATE",
    "CHAMPION",
    "TEST",
    "P",
    "CHECK",
    "CODE",
)


def last_judged(versions: Sequence[Obj]) -> Obj | None:
    """The newest version the offline gates judged (Validated or Rejected)."""
    judged = [
        v for v in versions if (v.get("status") or {}).get("phase") in ("Validated", "Rejected")
    ]
    return max(judged, key=lambda v: v["metadata"].get("creationTimestamp") or "", default=None)


def history_rows(versions: Sequence[Obj]) -> list[list[str]]:
    def created(v: Obj) -> str:
        return str(v["metadata"].get("creationTimestamp") or "")

    rows = []
    for v in sorted(versions, key=lambda v: (created(v), v["metadata"]["name"])):
        lineage = (v.get("spec") or {}).get("lineage") or {}
        trigger = lineage.get("trigger") or {}
        status = v.get("status") or {}
        rows.append(
            [
                v["metadata"]["name"],
                status.get("phase") or "-",
                created(v),
                lineage.get("baseVersion") or "-",
                trigger.get("kind") or "-",
                status.get("reason") or "-",
                status.get("message") or "",
            ]
        )
    return rows


HISTORY_HEADER = ("VERSION", "PHASE", "CREATED", "BASE", "TRIGGER", "REASON", "MESSAGE")


def last_decisions(events: Sequence[Obj], count: int) -> list[str]:
    """The newest Events about a Model, oldest first: what it decided, with its numbers."""
    ordered = sorted(events, key=lambda e: (e.get("lastTimestamp") or "", e["metadata"]["name"]))
    return [
        f"{e.get('lastTimestamp', '')}  {e['reason']}: {e['message']}" for e in ordered[-count:]
    ]


def previous_version(model: Obj, versions: Sequence[Obj]) -> str | None:
    """What `undo` pins: the newest version that served before the stable one."""
    stable = (model.get("status") or {}).get("stableVersion")
    served = [
        v
        for v in versions
        if (v.get("status") or {}).get("phase") == "Retired" and v["metadata"]["name"] != stable
    ]
    if not served:
        return None
    newest = max(
        served,
        key=lambda v: (
            (v.get("status") or {}).get("lastTransitionTime") or "",
            v["metadata"]["name"],
        ),
    )
    return str(newest["metadata"]["name"])

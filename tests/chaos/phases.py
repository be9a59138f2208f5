"""Where a Model stands in the loop, read from its status and its ModelVersions, as the
operator last wrote them. Pure. The chaos run classifies each kill instant with it."""

from datetime import datetime, timedelta
from typing import Any

Obj = dict[str, Any]
PROMOTED_FOR = timedelta(seconds=30)  # "promoted": this long after the stable version began
ORDER = (
    "observing",
    "breach pending",
    "breached",
    "training",
    "validating",
    "canary step 1",
    "canary step 2",
    "canary step 3",
    "rolling back",
    "promoted",
)


def phase(status: Obj, versions: list[Obj], now: datetime) -> str:
    """observing | breach pending (a failing streak, not yet a breach) | breached (declared,
    no training yet) | training | validating (a trained version not judged or not rolled
    out yet) | canary step N | rolling back | promoted (the stable version began serving
    less than PROMOTED_FOR ago)."""
    canary = status.get("canary")
    if canary:
        if canary.get("phase") == "RollingBack":
            return "rolling back"
        return f"canary step {int(canary.get('step') or 0) + 1}"
    if (status.get("training") or {}).get("running"):
        return "training"
    stable = status.get("stableVersion")
    phases = {v["metadata"]["name"]: (v.get("status") or {}) for v in versions}
    if any(
        name != stable and p.get("phase") in (None, "Pending", "Validated")
        for name, p in phases.items()
    ):
        return "validating"
    verdicts = [v for v in status.get("verdicts") or [] if v.get("version") == stable]
    if any(v.get("verdict") == "breach" for v in verdicts):
        return "breached"
    if any(v.get("failingSince") for v in verdicts):
        return "breach pending"
    began = phases.get(stable or "", {}).get("lastTransitionTime")
    if began and now - datetime.fromisoformat(began.replace("Z", "+00:00")) < PROMOTED_FOR:
        return "promoted" if _trained(versions, stable) else "observing"
    return "observing"


def _trained(versions: list[Obj], name: str | None) -> bool:
    """Made by a training (not the first version the run applied)."""
    version = next((v for v in versions if v["metadata"]["name"] == name), None)
    return bool(((version or {}).get("spec") or {}).get("lineage"))


def failing(status: Obj) -> bool:
    """A failing streak or a breach on the stable version."""
    stable = status.get("stableVersion")
    return any(
        v.get("verdict") == "breach" or v.get("failingSince")
        for v in status.get("verdicts") or []
        if v.get("version") == stable
    )

import json
from pathlib import Path
from typing import Any

from bench.scale.audit import OPERATOR, models_created, records, render, timeline, writes


def entry(
    at: str,
    verb: str,
    resource: str,
    name: str,
    code: int = 200,
    sub: str = "",
    body: dict[str, Any] | None = None,
    user: str = OPERATOR,
) -> dict[str, Any]:
    ref = {"resource": resource, "name": name, **({"subresource": sub} if sub else {})}
    return {
        "requestReceivedTimestamp": f"2026-12-03T10:00:{at}Z",
        "verb": verb,
        "user": {"username": user},
        "objectRef": ref,
        "responseStatus": {"code": code},
        **({"requestObject": body} if body is not None else {}),
    }


def condition(type_: str, status: str, reason: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason}


def status_patch(at: str, **status: Any) -> dict[str, Any]:
    """The operator's patch of m1's status."""
    return entry(at, "patch", "models", "m1", sub="status", body={"status": status})


LOG = [
    entry("00.100", "create", "models", "m1", 201, user="admin"),
    entry("00.110", "create", "models", "m10", 201, user="admin"),
    entry("00.200", "patch", "deployments", "m1-v1", 201),
    # answered out of order: the timeline is in the order they were received
    status_patch("00.400", conditions=[condition("Ready", "True", "Available")]),
    status_patch(
        "00.300",
        phase="Serving",
        conditions=[
            condition("Ready", "False", "DeploymentPending"),
            condition("Training", "False", "Idle"),
        ],
    ),
    status_patch("00.500", conditions=[condition("Training", "False", "Idle")]),
    entry("00.600", "patch", "models", "m1", 409, sub="status", body={"status": {}}),
    entry("00.700", "create", "events", "m1.18ed", 201),
    entry("00.800", "patch", "deployments", "m10-v1", 201),  # another Model's
    entry("00.900", "get", "models", "m1"),  # a read
    entry("01.000", "patch", "models", "m1", user="admin", body={"spec": {}}),  # not the operator
]


def test_the_operators_writes_are_counted_by_request_and_answer() -> None:
    assert models_created(LOG) == 2
    assert writes(LOG) == {
        ("patch deployments", 201): 2,
        ("patch models/status", 200): 3,
        ("patch models/status", 409): 1,
        ("create events", 201): 1,
    }


def test_a_models_timeline_tells_what_each_status_patch_changed() -> None:
    steps = timeline(LOG, "m1")
    assert [(s.at, s.what, s.name, s.code) for s in steps] == [
        ("10:00:00.200", "patch deployments", "m1-v1", 201),
        ("10:00:00.300", "patch models/status", "m1", 200),
        ("10:00:00.400", "patch models/status", "m1", 200),
        ("10:00:00.500", "patch models/status", "m1", 200),
        ("10:00:00.600", "patch models/status", "m1", 409),
        ("10:00:00.700", "create events", "m1.18ed", 201),
    ]
    assert [s.change for s in steps[1:5]] == [
        "sets phase; moves Ready=False (DeploymentPending), Training=False (Idle)",
        "moves Ready=True (Available)",
        "moves no condition (observedGeneration, messages or times only)",
        "moves no condition (observedGeneration, messages or times only)",
    ]
    assert steps[0].change == steps[5].change == ""


def test_a_log_file_is_read_and_rendered_per_model(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(r) + "\n" for r in LOG) + "\n")
    text = render(list(records(path)), "m1")
    assert text.splitlines()[0] == f"{OPERATOR}: 7 writes, 2 Models created"
    assert "      1.50       3  patch models/status (200)" in text
    assert "10:00:00.400  patch models/status m1 (200)  moves Ready=True (Available)" in text

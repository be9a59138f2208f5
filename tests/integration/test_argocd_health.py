"""The Argo CD health checks (docs/argocd/*.lua) under a real Lua interpreter
(Debian's lua5.4), on sample Models and ModelVersions of every phase."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).parents[2] / "docs" / "argocd"


def lua_literal(value: Any) -> str:
    """A JSON-like value as a Lua table constructor."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = shutil.which("lua5.4")
    assert lua, "lua5.4 is missing: hack/install-system-deps.sh installs it"
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = assert(loadfile({json.dumps(str(DOCS / script))}))()\n"
        'io.write(hs.status, "\\n", hs.message or "")'
    )
    result = subprocess.run([lua, "-"], input=program, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status, _, message = result.stdout.partition("\n")
    return status, message


def model(status: dict[str, Any] | None, generation: int = 2, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"generation": generation}, "spec": spec}
    if status is not None:
        body["status"] = {"observedGeneration": 2, **status}
    return body


READY = {"type": "Ready", "status": "True", "message": "fraud-v1 serves"}
BREACH = {"type": "Degraded", "status": "True", "message": "precision on eu: 0.6 < 0.8"}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (model(None), ("Progressing", "Waiting for the operator")),
        (model({}, generation=3), ("Progressing", "Waiting for the operator")),
        (model({"phase": "Pending"}), ("Progressing", "No version serves yet")),
        (
            model({"phase": "Serving", "stableVersion": "fraud-v1", "conditions": [READY]}),
            ("Healthy", "Serving fraud-v1"),
        ),
        (
            model({"phase": "Serving", "conditions": [READY, BREACH]}),
            ("Degraded", "precision on eu"),
        ),
        (
            model(
                {
                    "phase": "Progressing",
                    "conditions": [READY],
                    "canary": {"version": "fraud-v2", "weight": 10, "phase": "Progressing"},
                }
            ),
            ("Progressing", "Rolling out fraud-v2 at 10%"),
        ),
        (
            model(
                {
                    "phase": "Progressing",
                    "canary": {
                        "version": "fraud-v2",
                        "phase": "WaitingForApproval",
                        "message": "fraud-v2 passed step 2 and waits for an approval",
                    },
                }
            ),
            ("Suspended", "fraud-v2 passed step 2"),
        ),
        (model({"phase": "Serving", "conditions": [READY]}, paused=True), ("Suspended", "")),
        (
            model({"phase": "Failed", "conditions": [{**READY, "status": "False"}]}),
            ("Degraded", "fraud-v1 serves"),
        ),
    ],
)
def test_model_health(obj: dict[str, Any], expected: tuple[str, str]) -> None:
    status, message = health("model-health.lua", obj)
    assert status == expected[0]
    assert message.startswith(expected[1]), message


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, "Progressing"),
        ("Pending", "Progressing"),
        ("Validated", "Healthy"),
        ("Canary", "Progressing"),
        ("Serving", "Healthy"),
        ("Retired", "Healthy"),
        ("Rejected", "Degraded"),
        ("RolledBack", "Degraded"),
    ],
)
def test_modelversion_health(phase: str | None, expected: str) -> None:
    obj: dict[str, Any] = {"metadata": {}, "spec": {}}
    if phase:
        obj["status"] = {"phase": phase, "message": f"why {phase}"}
    status, message = health("modelversion-health.lua", obj)
    assert status == expected
    assert message == (f"why {phase}" if phase else "Waiting for the operator")

"""The Argo CD health checks in docs/argocd/resource_customizations/modelloop.dev/<Kind>/, in
Argo CD's own layout (health.lua, health_test.yaml, testdata/), so the folder drops into
Argo CD's resource_customizations/ as it is.

Every case of each health_test.yaml runs under a real Lua interpreter (Debian's lua5.4;
Argo CD runs gopher-lua, a Lua 5.1: the scripts use nothing the two do differently) and
must give exactly the status and message it names, as Argo CD's own test requires. The
testdata are whole objects as the API server serves them (defaults filled in): each is
written to the real API server and read back, and must come back as it is. After an API
change that adds a defaulted field, ``MODELLOOP_UPDATE_ARGOCD_TESTDATA=1`` rewrites the
testdata with what the API server serves.
"""

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.kube.rest import Kube

KINDS = Path(__file__).parents[2] / "docs" / "argocd" / "resource_customizations" / "modelloop.dev"
RESOURCES = {"Model": MODELS, "ModelVersion": MODEL_VERSIONS}
CASES: list[tuple[str, dict[str, Any]]] = [
    (kind.name, case)
    for kind in sorted(KINDS.iterdir())
    for case in yaml.safe_load((kind / "health_test.yaml").read_text())["tests"]
]
TESTDATA = sorted(KINDS.glob("*/testdata/*.yaml"))


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


def health(script: Path, obj: dict[str, Any]) -> dict[str, str]:
    lua = shutil.which("lua5.4")
    assert lua, "lua5.4 is missing: hack/install-system-deps.sh installs it"
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = assert(loadfile({json.dumps(str(script))}))()\n"
        'io.write(hs.status, "\\n", hs.message or "")'
    )
    result = subprocess.run([lua, "-"], input=program, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status, _, message = result.stdout.partition("\n")
    return {"status": status, "message": message}


@pytest.mark.parametrize(
    ("kind", "case"), CASES, ids=[f"{k}/{Path(c['inputPath']).stem}" for k, c in CASES]
)
def test_health(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((KINDS / kind / case["inputPath"]).read_text())
    assert health(KINDS / kind / "health.lua", obj) == case["healthStatus"]


def test_every_testdata_file_is_a_case_and_every_phase_is_covered() -> None:
    used = {KINDS / kind / case["inputPath"] for kind, case in CASES}
    assert used == set(TESTDATA)
    seen = {(kind, case["healthStatus"]["status"]) for kind, case in CASES}
    statuses = {"Healthy", "Progressing", "Suspended", "Degraded"}
    assert seen == {("Model", s) for s in statuses} | {
        ("ModelVersion", s) for s in statuses - {"Suspended"}
    }


def _served(kube: Kube, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object written as the operator and users would write it, and read back: its
    spec (changed generation - 1 times, by flipping a Model's spec.paused, to reach its
    generation), then its status."""
    resource = RESOURCES[obj["kind"]]
    meta = {k: v for k, v in obj["metadata"].items() if k in ("name", "labels", "annotations")}
    flips = obj["metadata"]["generation"] - 1
    spec = copy.deepcopy(obj["spec"])
    if flips % 2:
        spec["paused"] = not spec["paused"]
    kube.create(
        resource,
        namespace,
        {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "spec": spec},
    )
    for _ in range(flips):
        spec["paused"] = not spec["paused"]
        kube.merge_patch(resource, namespace, meta["name"], {"spec": {"paused": spec["paused"]}})
    if "status" in obj:
        kube.merge_patch(resource, namespace, meta["name"], {"status": obj["status"]}, "status")
    served = kube.get(resource, namespace, meta["name"])
    assert served is not None
    kube.delete(resource, namespace, meta["name"])
    return served


def test_the_testdata_are_objects_as_the_api_server_serves_them(kube: Kube, namespace: str) -> None:
    update = os.environ.get("MODELLOOP_UPDATE_ARGOCD_TESTDATA") == "1"
    for path in TESTDATA:
        obj = yaml.safe_load(path.read_text())
        served = _served(kube, namespace, obj)
        compared = ("apiVersion", "kind", "spec", "status")
        expected = {k: obj.get(k) for k in compared} | {"generation": obj["metadata"]["generation"]}
        actual = {k: served.get(k) for k in compared} | {
            "generation": served["metadata"]["generation"]
        }
        if update and actual != expected:
            rewritten = copy.deepcopy(obj)
            rewritten.update({k: served[k] for k in ("spec", "status") if k in served})
            path.write_text(yaml.safe_dump(rewritten, sort_keys=False, width=100))
            continue
        assert actual == expected, path.name

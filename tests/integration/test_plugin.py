"""`kubectl modelloop` through a real kubectl (its plugin discovery on PATH) against the
real control plane: what it prints, what its commands change, and its errors."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcluster import binaries
from localcluster.apply import REPO, load
from localcluster.chart import service_account_identity
from localcluster.controlplane import ControlPlane
from localcluster.processes import Process
from localcluster.waiting import wait_for
from tests.harness.corpus import CORPUS, CORPUS_DIR

from modelloop.api.resources import MODEL_VERSIONS, MODELS
from modelloop.api.vocabulary import GROUP
from modelloop.kube.rest import Kube, Resource

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
MODEL = "fraud-detector"


def kubectl_modelloop(*args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl modelloop ...``: kubectl finds ``kubectl-modelloop`` on PATH."""
    kubectl = binaries.control_plane_dir() / "kubectl"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [str(kubectl), "modelloop", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
    )


def plugin(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return kubectl_modelloop("--kubeconfig", str(kubeconfig), "-n", namespace, *args)


def spec_of(kube: Kube, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = (kube.get(MODELS, namespace, MODEL) or {})["spec"]
    return spec


def annotation(kube: Kube, namespace: str, key: str) -> str | None:
    model = kube.get(MODELS, namespace, MODEL) or {}
    value: str | None = (model["metadata"].get("annotations") or {}).get(f"{GROUP}/{key}")
    return value


def test_status_history_why_and_the_steering_commands(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    operator: Callable[..., Process],
) -> None:
    admin = control_plane.admin.kubeconfig
    running = operator()
    [model] = load(REPO / "examples" / "fraud-detector.yaml")
    [version] = load(REPO / "examples" / "fraud-detector-v1.yaml")
    kube.create(MODELS, namespace, model)
    kube.create(MODEL_VERSIONS, namespace, version)

    def shows_serving() -> bool:
        out = plugin(admin, namespace, "status").stdout
        return f"{MODEL}   Serving   fraud-detector-v1" in out

    wait_for(shows_serving, 90, "status shows the version serving")
    detail = plugin(admin, namespace, "status", MODEL)
    assert detail.returncode == 0, detail.stderr
    assert "last decision: " in detail.stdout
    history = plugin(admin, namespace, "history", MODEL).stdout
    assert history.splitlines()[0].split() == [
        "VERSION",
        "PHASE",
        "CREATED",
        "BASE",
        "TRIGGER",
        "REASON",
        "MESSAGE",
    ]
    assert history.splitlines()[1].split()[:2] == ["fraud-detector-v1", "Serving"]
    assert "Ready=True" in plugin(admin, namespace, "why", MODEL).stdout

    assert plugin(admin, namespace, "retrain", MODEL, "--reason", "fresh labels").returncode == 0
    assert annotation(kube, namespace, "retrain") == "fresh labels"
    plugin(admin, namespace, "pause", MODEL)
    assert spec_of(kube, namespace)["paused"] is True
    plugin(admin, namespace, "resume", MODEL)
    assert spec_of(kube, namespace)["paused"] is False

    nothing = plugin(admin, namespace, "undo", MODEL)
    assert (nothing.returncode, nothing.stderr.strip()) == (
        1,
        f'error: model "{MODEL}" has no earlier version to go back to',
    )
    assert plugin(admin, namespace, "undo", MODEL, "--to", "fraud-detector-v1").returncode == 0
    assert spec_of(kube, namespace)["pinnedVersion"] == "fraud-detector-v1"
    unpinned = plugin(admin, namespace, "unpin", MODEL)
    assert unpinned.stdout.startswith(f"{MODEL} no longer pinned to fraud-detector-v1: ")
    assert "pinnedVersion" not in spec_of(kube, namespace)
    again = plugin(admin, namespace, "unpin", MODEL)
    assert (again.returncode, again.stderr.strip()) == (1, f'error: model "{MODEL}" is not pinned')

    none = plugin(admin, namespace, "abort", MODEL)
    assert none.stderr.strip() == f'error: model "{MODEL}" has no rollout in progress'
    # A rollout as the operator would record it (the operator stopped, so it stays).
    running.stop()
    canary = {"version": "fraud-detector-v2", "weight": 50, "step": 1, "phase": "Paused"}
    kube.merge_patch(MODELS, namespace, MODEL, {"status": {"canary": canary}}, sub="status")
    assert plugin(admin, namespace, "promote", MODEL).returncode == 0
    assert annotation(kube, namespace, "approve") == "fraud-detector-v2/1"
    plugin(admin, namespace, "approve", MODEL, "--step", "3")
    assert annotation(kube, namespace, "approve") == "fraud-detector-v2/2"
    plugin(admin, namespace, "abort", MODEL)
    assert annotation(kube, namespace, "abort") == "fraud-detector-v2"

    # A candidate the offline gate rejected, as the operator records it: `why` shows its checks.
    rejected = version | {"metadata": {"name": "fraud-detector-v3"}}
    kube.create(MODEL_VERSIONS, namespace, rejected)
    gate = {
        "gate": "default",
        "metric": "precision",
        "slice": "eu",
        "candidate": 0.7,
        "candidateSamples": 900,
        "champion": 0.8,
        "championSamples": 900,
        "test": "twoProportion",
        "pValue": 1e-9,
        "passed": False,
        "code": "SignificantRegression",
    }
    status = {"phase": "Rejected", "gates": [gate]}
    kube.merge_patch(MODEL_VERSIONS, namespace, "fraud-detector-v3", {"status": status}, "status")
    why = plugin(admin, namespace, "why", MODEL).stdout
    assert "offline gates of fraud-detector-v3 (Rejected):" in why
    row = next(line for line in why.splitlines() if line.startswith("default"))
    assert row.split() == [
        "default",
        "precision",
        "eu",
        "0.7",
        "(900)",
        "0.8",
        "(900)",
        "twoProportion",
        "1e-09",
        "FAIL",
        "SignificantRegression",
    ]


def test_clear_errors_for_a_missing_model_and_no_permission(
    control_plane: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    admin = control_plane.admin.kubeconfig
    missing = plugin(admin, namespace, "status", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f'error: model "nope" not found in namespace "{namespace}"',
    )
    kube.create(
        SERVICE_ACCOUNTS,
        namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}},
    )
    nobody = service_account_identity(control_plane.admin, namespace, "nobody", tmp_path)
    refused = plugin(nobody.kubeconfig, namespace, "status")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: not allowed to list models: "), refused.stderr
    assert "Traceback" not in refused.stderr


def test_lint_passes_the_examples_and_fails_the_invalid_corpus_naming_each_field() -> None:
    """No cluster: ``kubectl modelloop lint`` reads files."""
    clean = kubectl_modelloop("lint", str(REPO / "examples"))
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stdout + clean.stderr

    invalid = [c for c in CORPUS if not c.valid]
    files = [str(CORPUS_DIR / f"{c.name}.yaml") for c in invalid]
    result = kubectl_modelloop("lint", *files)
    assert result.returncode == 1, result.stderr
    found = result.stdout.splitlines()
    for case, file in zip(invalid, files, strict=True):
        assert case.field
        assert case.message
        named = [line for line in found if line.startswith(f"{file}: ") and case.field in line]
        assert any(case.message in line for line in named), (case.name, found)

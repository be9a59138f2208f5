"""The example trainer runs for real, as a local process with the env the operator
gives its Job; its reported metrics are recomputed with scikit-learn from the
saved artifact and held-out data."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from examples.trainer.churn import SLICES, design
from sklearn.metrics import accuracy_score, roc_auc_score

from modelloop.api.model import ModelSpec, TrainingRecord, TrainingTrigger
from modelloop.api.modelversion import OfflineMetrics
from modelloop.api.vocabulary import NoiseTest
from modelloop.retraining.jobs import build_job
from modelloop.retraining.result import parse_result
from modelloop.validation.gates import validate

REPO = Path(__file__).parents[2]
TRAINER = REPO / "examples" / "trainer" / "train.py"
CHURN = yaml.safe_load((REPO / "examples" / "churn-retrain.yaml").read_text())
MODEL = {"metadata": {"name": "churn", "namespace": "ml", "uid": "u-1"}, "spec": CHURN["spec"]}


def job_env(tmp: Path, sequence: int, started: datetime, base_uri: str | None) -> dict[str, str]:
    spec = ModelSpec.model_validate(CHURN["spec"])
    spec = spec.model_copy(
        update={
            "retraining": spec.retraining.model_copy(  # type: ignore[union-attr]
                update={"output_uri": f"file://{tmp}/models"}
            )
        }
    )
    record = TrainingRecord(
        sequence=sequence,
        job=f"churn-train-{sequence}",
        trigger=TrainingTrigger(kind="schedule", reason="weekly"),
        started=started,
    )
    job = build_job(MODEL, spec, record, "churn-v1" if base_uri else None, ["mobile"], base_uri)
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def train(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    result = tmp / f"result-{env['MODELLOOP_OUTPUT_URI'].rsplit('/', 1)[1]}.json"
    subprocess.run(
        [sys.executable, str(TRAINER), f"--result-path={result}"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )
    text = result.read_text()
    parse_result(text)  # what the operator would accept
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def recomputed(artifact_dir: Path, weights_dir: Path) -> dict[tuple[str, str], float]:
    """AUC and accuracy per slice by scikit-learn, from the saved weights and held-out data."""
    held = np.load(artifact_dir / "heldout.npz")
    w = np.load(weights_dir / "model.npz")["weights"]
    logit = design(held["x"], held["s"]) @ w
    found = {}
    for i, name in enumerate(SLICES):
        y, mine = held["y"][held["s"] == i], logit[held["s"] == i]
        found[("auc", name)] = float(roc_auc_score(y, mine))
        found[("accuracy", name)] = float(accuracy_score(y, mine >= 0))
    return found


def recomputed_pairs(artifact_dir: Path, champion_dir: Path) -> dict[str, tuple[int, int]]:
    """Per slice, the held-out examples only the candidate predicts right, and only the
    champion."""
    held = np.load(artifact_dir / "heldout.npz")
    x = design(held["x"], held["s"])
    right = [
        (x @ np.load(d / "model.npz")["weights"] >= 0) == (held["y"] == 1)
        for d in (artifact_dir, champion_dir)
    ]
    found = {}
    for i, name in enumerate(SLICES):
        mine, theirs = (r[held["s"] == i] for r in right)
        found[name] = (int((mine & ~theirs).sum()), int((theirs & ~mine).sum()))
    return found


def values(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(r["metric"], r["slice"]): r["value"] for r in rows}


def test_the_example_trainer_reports_honest_metrics(tmp_path: Path) -> None:
    first = train(tmp_path, job_env(tmp_path, 1, datetime(2026, 3, 1, tzinfo=UTC), None))
    champion_uri = first["artifactURI"]
    second = train(tmp_path, job_env(tmp_path, 2, datetime(2026, 6, 1, tzinfo=UTC), champion_uri))
    out = Path(second["artifactURI"].removeprefix("file://"))
    candidate, champion = (
        values(second["metrics"]["candidate"]),
        values(second["metrics"]["champion"]),
    )
    assert candidate == pytest.approx(recomputed(out, out), abs=1e-12)
    champion_dir = Path(champion_uri.removeprefix("file://"))
    assert champion == pytest.approx(recomputed(out, champion_dir), abs=1e-12)
    # Accuracy comes with its paired counts, which the gate tests.
    pairs = {
        r["slice"]: (r["pairs"]["candidateOnly"], r["pairs"]["championOnly"])
        for r in second["metrics"]["candidate"]
        if "pairs" in r
    }
    assert pairs == recomputed_pairs(out, champion_dir)
    assert not any("pairs" in r for r in first["metrics"]["candidate"])
    # The demo's Model gates accuracy; with its default gate, the check is a paired test.
    demo = yaml.safe_load((REPO / "examples" / "demo" / "churn.yaml").read_text())["spec"]
    result = validate(
        ModelSpec.model_validate(demo | {"validation": {}}),
        OfflineMetrics.model_validate(second["metrics"]),
    )
    assert [(c.slice, c.test, c.code.value) for c in result.checks] == [
        ("mobile", NoiseTest.PAIRED, "WithinTolerance"),
        ("web", NoiseTest.PAIRED, "WithinTolerance"),
    ]
    # Three months of drift: the old model is worse where the concept moved fastest.
    assert champion["auc", "mobile"] < candidate["auc", "mobile"] - 0.05
    assert abs(champion["auc", "web"] - candidate["auc", "web"]) < 0.05

"""The scale harness (``make bench-scale``, bench/scale) kept from rotting: a short run at
six Models, two of them rolling a canary, across three shards, two of them running (two
operators; the third shard's Models are created and left alone) on its own control plane.
It checks the report, not the operator's figures: every running shard's Model Ready, every
field a finite number, the operators' API traffic counted, each shard measured, every
Deployment timed in the burst, and the breaching Model declared in breach and trained
exactly once, and every operator killed and started again to lead, catch up, write
nothing but a Model edited meanwhile, and start no training twice."""

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[2]


def numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [float(value)] if isinstance(value, int | float) else []


def test_short_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "scale-6.json"
    command = ["-m", "bench.scale", "--models=6", "--canaries=2", "--shards=3", "--short"]
    command.append("--shards-running=2")
    command.append(f"--out={out}")
    run = subprocess.Popen(
        [sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = run.communicate(timeout=480)
    except subprocess.TimeoutExpired:
        run.terminate()  # the harness stops its control plane and operator on SIGTERM
        output, _ = run.communicate(timeout=60)
    assert run.returncode == 0, output.decode()[-4000:]
    report = json.loads(out.read_text())

    # m0000..m0005 round-robin: s0 holds m0000 and m0003, s1 the canaries m0001 and m0004.
    assert (report["models"], report["models_running"]) == (6, 4)
    assert (report["canaries"], report["canaries_rolling"]) == (2, 2)
    assert 0 < report["ready_seconds"] < 300
    each_ready = report["each_ready"]  # a Model's apply -> its Ready: p50, p99, max
    assert 0 < each_ready[0] <= each_ready[1] <= each_ready[2] <= report["ready_seconds"]
    stages = report["apply_stages"]  # where that time went: each stage's p50, p99, max
    assert list(stages) == ["to_deployment", "to_available", "to_ready"]
    assert all(p50 <= p99 <= most for p50, p99, most in stages.values())
    assert stages["to_deployment"][0] > 0
    assert stages["to_available"][0] > 0
    assert all(math.isfinite(n) for n in numbers(report))
    assert report["apply"]["api_requests"] > 0
    assert report["apply"]["api_by_kind_per_model_per_resync"]
    answers = report["apply"]["apiserver_mean_ms"]  # e.g. "APPLY services": its mean, ms
    assert answers
    assert all(ms >= 0 for ms in answers.values())  # a cached GET may round to 0.0
    assert max(answers.values()) > 0
    assert report["steady"]["apiserver_requests_per_second"] > 0
    assert report["steady"]["cpu_share"] > 0
    assert len(report["steady_cpu_per_cycle"]) == 1
    assert 0 < report["rss_steady_mib"] <= report["rss_peak_mib"]
    phases = report["rss_peak_by_phase_mib"]
    assert list(phases) == ["apply", "steady", "burst", "breaches", "restart"]
    assert max(phases.values()) == report["rss_peak_mib"]
    shards = report["shards"]
    assert [(s["shard"], s["models"]) for s in shards] == [("s0", 2), ("s1", 2)]
    for shard in shards:
        assert 0 < shard["rss_steady_mib"] <= shard["rss_peak_mib"] <= report["rss_peak_mib"]
        assert max(shard["rss_peak_by_phase_mib"].values()) == shard["rss_peak_mib"]
        assert shard["steady"]["cpu_share"] > 0
    burst = report["burst"]
    # A stable Deployment per running shard's Model, a canary's per canary: none for s2's.
    assert burst["deployments"] == 6
    assert 0 <= burst["latency_p50"] <= burst["latency_p99"] <= burst["latency_max"]
    assert burst["latency_max"] <= burst["all_updated_seconds"]
    breach = report["breach"]  # 10 % of the 2 running retraining Models: at least one
    assert (breach["models"], breach["jobs"], breach["duplicated"], breach["unasked"]) == (
        1,
        1,
        0,
        0,
    )
    assert 0 < breach["breach_p50"] <= breach["breach_max"]
    assert 0 < breach["training_p50"] <= breach["training_max"]
    again = report["restart"]  # nothing changed while the operators were down
    assert 0 < again["lead_seconds"] <= again["caught_up_seconds"]
    assert again["window"]["reconciles"] >= 4
    assert 0 < again["rss_mib"] <= report["rss_peak_mib"]
    assert again["jobs"] == 0
    edits = again["edits"]  # a tenth of the 4 running Models, at least one, edited meanwhile
    assert (edits["models"], edits["deployments"]) in ((1, 1), (1, 2))  # 2: a canary's
    assert 0 < edits["latency"][0] <= edits["latency"][2]
    # A rolling canary's analysis may write its Model's status meanwhile; the edited
    # Model's Deployments are updated once each, and told in an Event; nothing else.
    writes = {k: v * report["models_running"] for k, v in again["writes_per_model"].items()}
    assert set(writes) <= {"patch models", "apply deployments", "create events"}
    assert writes.get("apply deployments") == pytest.approx(edits["deployments"])
    assert round(writes.get("create events", 0)) <= edits["models"]

"""The loop benchmark end to end (bench/loop): the short mode CI runs, and ModelLoop's
decisions as the replay drives them."""

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from bench.loop.__main__ import main
from bench.loop.baselines import BASELINES
from bench.loop.ledger import Ledger
from bench.loop.policy import DEFAULT_POLICY, PolicyError, load_policy
from bench.loop.replay import run_policy
from bench.loop.streams import DAY, SLICES, generate
from bench.loop.trainer import bootstrap


def test_the_short_mode_is_deterministic_and_reports_every_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--short", "--json"]) == 0
    first = capsys.readouterr().out
    assert main(["--short", "--json"]) == 0
    assert capsys.readouterr().out == first
    runs = json.loads(first)
    by_stream: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_stream.setdefault(run["stream"], {})[run["policy"]] = run
    assert set(by_stream) == {"gradual", "abrupt"}
    for stream, policies in by_stream.items():
        assert set(policies) == {"breach", *(name for name, _ in BASELINES)}, stream
        assert policies["never"]["trainings"] == 0
        assert policies["every day"]["trainings"] == 59  # each of 60 days but the first
        assert policies["every 7d"]["trainings"] == 8
        for run in policies.values():
            assert run["days"] == 60
            assert 0 <= run["worstSlice"] <= run["accuracy"] <= 1, run


@pytest.mark.parametrize("lag", [1, 3])
def test_a_breach_for_a_day_retrains_once_the_late_labels_show_it(lag: int) -> None:
    """web's concept jumps on scored day 10; its labels arrive ``lag`` days later, fail at
    the next midnight's evaluation, and hold 'for: 1d' until the one after."""
    stream = generate("abrupt", 1, 30, 14, 1000, lag)
    run = run_policy(stream, load_policy(DEFAULT_POLICY, stream.slices), 14, 1)
    assert run.trainings[0].day == 10 + lag + 2
    assert run.trainings[0].outcome in ("promoted", "rejected", "rolledBack")
    days = [t.day for t in run.trainings]
    assert all(b - a >= 3 for a, b in itertools.pairwise(days))  # cooldown 3d


def test_an_evaluation_window_counts_the_outcomes_whose_labels_arrived_in_it() -> None:
    stream = generate("gradual", 1, 10, 2, 100, 2)
    ledger = Ledger(stream, 1)
    weights = bootstrap(stream, 2 * DAY)
    ledger.serve(0, 12 * DAY, (0, weights))
    right, total = ledger.outcomes(6 * DAY, 7 * DAY, 1)  # the labels of day 4
    assert total.tolist() == [[100, 100, 100]]
    on_day_4 = slice(*np.searchsorted(stream.time, [4 * DAY, 5 * DAY]))
    expected = [ledger.correct[on_day_4][stream.slice[on_day_4] == i].sum() for i in range(3)]
    assert right.tolist() == [expected]


def _auc(spec: dict[str, Any]) -> None:
    spec["metrics"][0]["name"] = "auc"
    spec["retraining"]["triggers"]["onBreach"] = ["auc"]


def _drift(spec: dict[str, Any]) -> None:
    spec["drift"] = [{"name": "tenure", "histogram": "tenure", "threshold": 0.1}]


def _other_slices(spec: dict[str, Any]) -> None:
    spec["slices"] = [{"name": "eu"}]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (_auc, "computes only 'accuracy'"),
        (_drift, "drift checks are not simulated"),
        (_other_slices, "are not the stream's"),
    ],
)
def test_a_policy_the_benchmark_cannot_replay_is_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], error: str
) -> None:
    manifest = yaml.safe_load(DEFAULT_POLICY.read_text())
    change(manifest["spec"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(PolicyError, match=error):
        load_policy(path, SLICES)

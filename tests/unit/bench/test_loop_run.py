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
from bench.loop.policy import BREACH, RECOMMENDED, PolicyError, load_policy
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
    for policies in by_stream.values():
        assert set(policies) == {"recommended", "breach", *(name for name, _ in BASELINES)}
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
    run = run_policy(stream, load_policy(BREACH, stream.slices), 14, 1)
    assert run.trainings[0].day == 10 + lag + 2
    assert run.trainings[0].outcome in ("promoted", "rejected", "rolledBack")
    days = [t.day for t in run.trainings]
    assert all(b - a >= 3 for a, b in itertools.pairwise(days))  # cooldown 3d


def _policy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    manifest = yaml.safe_load(RECOMMENDED.read_text())
    change(manifest["spec"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _drop_only(spec: dict[str, Any]) -> None:
    spec["metrics"][0]["objective"] = {"maxDrop": 0.08}


@pytest.mark.parametrize("lag", [1, 3])
def test_a_drop_below_the_bootstrap_versions_offline_level_retrains(
    tmp_path: Path, lag: int
) -> None:
    """The first version carries the offline metrics of its warm-up training, so a maxDrop
    objective judges it: web's jump on scored day 10 shows at the first midnight after its
    labels arrived, and breaches at once (for: 0s)."""
    stream = generate("abrupt", 1, 30, 14, 1000, lag)
    run = run_policy(stream, load_policy(_policy(tmp_path, _drop_only), stream.slices), 14, 1)
    assert [t.day for t in run.trainings] == [10 + lag + 1]


@pytest.mark.parametrize(("whole_window", "repaired"), [(False, True), (True, False)])
def test_a_failing_slice_trains_on_its_data_since_the_change(
    whole_window: bool, repaired: bool
) -> None:
    """One training after web's jump: on web's data since the jump (MODELLOOP_FAILING_SINCE)
    it repairs the slice and is promoted; on the whole window, mostly the old world, it
    does not, and the offline gate's repair check rejects it (no better where its breach
    was), so it does not become the new level the drop is measured from."""
    stream = generate("abrupt", 1, 30, 14, 1000, 1)
    run = run_policy(stream, load_policy(RECOMMENDED, stream.slices), 14, 1, whole_window)
    assert run.trainings[0].day == 12
    assert run.trainings[0].outcome == ("promoted" if repaired else "rejected")
    after = run.worst[15:18]  # the canary ended by day 15
    assert after.min() > 0.8 if repaired else after.max() < 0.5


@pytest.mark.parametrize(("minimum", "days"), [(1, [18, 48]), (10**9, [18])])
def test_the_labelled_examples_that_arrived_are_the_new_data_counter(
    tmp_path: Path, minimum: int, days: list[int]
) -> None:
    """store's concept changes on scored days 16 and 46; after the first training the
    breach needs ``minimum`` labelled examples more (about 3000 arrive a day)."""

    def guard(spec: dict[str, Any]) -> None:
        spec["retraining"]["newData"]["minimum"] = minimum

    stream = generate("recurring", 1, 60, 14, 1000, 1)
    run = run_policy(stream, load_policy(_policy(tmp_path, guard), stream.slices), 14, 1)
    assert [t.day for t in run.trainings] == days


def test_an_evaluation_window_counts_the_outcomes_whose_labels_arrived_in_it() -> None:
    stream = generate("gradual", 1, 10, 2, 100, 2)
    ledger = Ledger(stream, 1)
    weights = bootstrap(stream, 2 * DAY).weights
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
    manifest = yaml.safe_load(BREACH.read_text())
    change(manifest["spec"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(PolicyError, match=error):
        load_policy(path, SLICES)

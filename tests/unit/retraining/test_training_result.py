"""The result contract: what the SDK writes, the operator reads; bad results are named."""

import json
from pathlib import Path

import pytest

from modelloop.api.modelversion import PairedCounts
from modelloop.retraining.result import MAX_BYTES, ResultError, parse_result
from modelloop.sdk import Pairs, count_pairs, report


def test_what_the_sdk_writes_the_operator_reads(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    report(
        "s3://models/fraud/7/model.joblib",
        candidate={("precision", "eu"): 0.91, ("precision", "us"): 0.88},
        champion={("precision", "eu"): 0.90, ("precision", "us"): 0.89},
        digest="sha256:" + "ab" * 32,
        samples={("precision", "eu"): 1200},
        path=str(log),
    )
    result = parse_result(log.read_text())
    assert result.artifact_uri == "s3://models/fraud/7/model.joblib"
    assert [(m.metric, m.slice, m.value, m.samples) for m in result.metrics.candidate] == [
        ("precision", "eu", 0.91, 1200),
        ("precision", "us", 0.88, None),
    ]
    assert [m.value for m in result.metrics.champion] == [0.90, 0.89]


def test_paired_counts_go_on_the_candidates_row(tmp_path: Path) -> None:
    candidate_right = [True, True, False, True, False, True]
    champion_right = [True, False, False, False, True, True]
    pairs = count_pairs(candidate_right, champion_right)
    assert pairs == Pairs(candidate_only=2, champion_only=1)
    log = tmp_path / "termination-log"
    report(
        "s3://m/1",
        candidate={("accuracy", "eu"): 4 / 6, ("auc", "eu"): 0.7},
        champion={("accuracy", "eu"): 3 / 6, ("auc", "eu"): 0.6},
        samples={("accuracy", "eu"): 6, ("auc", "eu"): 6},
        pairs={("accuracy", "eu"): pairs},
        path=str(log),
    )
    metrics = parse_result(log.read_text()).metrics
    assert [(m.metric, m.pairs) for m in metrics.candidate] == [
        ("accuracy", PairedCounts(candidate_only=2, champion_only=1)),
        ("auc", None),
    ]
    assert all(m.pairs is None for m in metrics.champion)


@pytest.mark.parametrize(
    ("champion", "samples", "refusal"),
    [
        (None, {("accuracy", "eu"): 6}, r"pairs for \[\('accuracy', 'eu'\)\]: report both values"),
        ({("accuracy", "eu"): 0.5}, None, "pairs need samples"),
    ],
)
def test_the_sdk_refuses_pairs_it_cannot_report(
    tmp_path: Path,
    champion: dict[tuple[str, str], float] | None,
    samples: dict[tuple[str, str], int] | None,
    refusal: str,
) -> None:
    with pytest.raises(ValueError, match=refusal):
        report(
            "s3://m/1",
            {("accuracy", "eu"): 4 / 6},
            champion,
            samples=samples,
            pairs={("accuracy", "eu"): Pairs(2, 1)},
            path=str(tmp_path / "log"),
        )
    assert not (tmp_path / "log").exists()


def test_the_sdk_refuses_a_result_the_kubelet_would_truncate(tmp_path: Path) -> None:
    many = {("precision", f"slice-{i}"): 0.5 for i in range(200)}
    with pytest.raises(ValueError, match=f"bytes; a termination message holds {MAX_BYTES}"):
        report("s3://m/1", many, path=str(tmp_path / "log"))
    assert not (tmp_path / "log").exists()


def test_the_sdk_refuses_non_finite_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision on slice eu is nan"):
        report("s3://m/1", {("precision", "eu"): float("nan")}, path=str(tmp_path / "log"))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (None, "wrote no result"),
        ("  ", "wrote no result"),
        ("x" * (MAX_BYTES + 1), f"is {MAX_BYTES + 1} bytes"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be one JSON object"),
        (json.dumps({"metrics": {}}), "artifactURI: Field required"),
        (
            json.dumps({"artifactURI": "s3://m", "metrics": {"candidate": [{"metric": "p"}]}}),
            "metrics.candidate.0.slice: Field required",
        ),
        (
            json.dumps({"artifactURI": "s3://m", "extra": 1}),
            "extra: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_results_are_named(message: str | None, reason: str) -> None:
    with pytest.raises(ResultError, match=reason):
        parse_result(message)

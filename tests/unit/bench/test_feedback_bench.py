"""The feedback benchmark's short mode (bench/feedback.py), its in-process part: every
figure there and sane; the HTTP part runs the service as a process (make bench-feedback)."""

import json

import pytest
from bench.feedback import main


def test_the_short_mode_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--short", "--parts", "core", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["store"], figures["batch"], figures["http"]) == ("sqlite", 1000, [])
    assert [t["mode"] for t in figures["core"]] == ["batched", "single"]
    for t in figures["core"]:
        assert t["events"] == (10_000 if t["mode"] == "batched" else 1_000)
        assert t["per_core"] > 0
        assert t["predictions_per_core"] > 0
        assert t["labels_per_core"] > 0
        assert 0 < t["join_ms_p50"] <= t["join_ms_p99"]
    batched, single = figures["core"]
    assert batched["per_core"] > single["per_core"]  # what batches are for
    memory = figures["memory"]
    assert memory["pending"] == 5_000
    assert 0 < memory["disk_bytes_each"] < 2_000  # one small row and its index entries
    assert 0 < len(figures["profile"]) <= 12
    assert 0 < sum(row["share"] for row in figures["profile"]) <= 1


def test_unknown_parts_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--parts", "core,disk"])

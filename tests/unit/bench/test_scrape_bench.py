"""The scrape benchmark's short mode (bench/scrape.py): both ways measured on the same
series, and the streamed scrape holds less at once than the whole rendering."""

import json

import pytest
from bench.scrape import main


def test_the_short_mode_reports_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--short"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["models"], figures["series"]) == (20, 20 * 2 * 5 * 2 * 7)
    streamed, whole = figures["streamed"], figures["generate_latest"]
    for way in (streamed, whole):
        assert way["seconds_per_series_us"] > 0
        assert way["peak_mib"] > 0
    assert streamed["bytes_per_series"] == whole["bytes_per_series"]  # the same text
    assert streamed["peak_mib"] < whole["peak_mib"]

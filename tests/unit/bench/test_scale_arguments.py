"""bench.scale's arguments: a fleet too small for a canary is capped so that one Model
still retrains (the breach burst has something to breach); every shard runs unless told,
and no more shards can run than there are."""

import pytest
from bench.scale.__main__ import parse


@pytest.mark.parametrize(
    ("argv", "canaries"),
    [
        (["--models=100"], 10),
        (["--models=5"], 4),
        (["--models=5", "--canaries=2"], 2),
        (["--models=2", "--canaries=9"], 1),
    ],
)
def test_the_canaries_leave_a_model_to_retrain(argv: list[str], canaries: int) -> None:
    assert parse(argv).canaries == canaries


def test_one_model_is_refused_with_why(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--models=1"])
    assert "one rolls a canary, one retrains" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "running"),
    [
        (["--models=100"], 0),
        (["--models=100", "--shards=4"], 4),
        (["--models=100", "--shards=4", "--shards-running=1"], 1),
    ],
)
def test_every_shard_runs_unless_told(argv: list[str], running: int) -> None:
    assert parse(argv).shards_running == running


@pytest.mark.parametrize("argv", [["--shards-running=1"], ["--shards=2", "--shards-running=3"]])
def test_running_shards_beyond_the_shards_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(["--models=10", *argv])
    assert "--shards-running must be between 1 and --shards" in capsys.readouterr().err

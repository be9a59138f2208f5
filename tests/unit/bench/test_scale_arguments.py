"""bench.scale's arguments: a fleet too small for a canary is capped so that one Model
still retrains (the breach burst has something to breach)."""

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

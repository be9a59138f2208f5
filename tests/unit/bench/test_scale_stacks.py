"""Reading a py-spy capture: which functions hold the samples."""

import pytest
from bench.scale.stacks import function, samples, tally

RUN = "run (kopf/_core/reactor/running.py:{})"
RESYNC = "resync (/repo/operator/modelloop/handlers/resync.py:{})"
CAPTURE = [
    f"{RUN.format(80)};{RESYNC.format(40)};plan (/repo/operator/modelloop/serving/plan.py:12) 30\n",
    f"{RUN.format(81)};{RESYNC.format(41)} 10\n",
    "collect (<frozen gc>:3) 60\n",
    "a line py-spy did not write\n",
]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("plan (/repo/operator/modelloop/serving/plan.py:12)", "plan (modelloop/serving/plan.py)"),
        ("dumps (json/__init__.py:231)", "dumps (json/__init__.py)"),
        ("<module> (<string>:6)", "<module> (<string>)"),
        ("not a frame", None),
    ],
)
def test_a_frame_is_named_by_its_function_and_file_without_the_line(
    frame: str, expected: str | None
) -> None:
    assert function(frame) == expected


def test_samples_count_by_own_and_by_every_frame_they_pass_through() -> None:
    total, own, under = tally(samples(CAPTURE), under=None)
    assert total == 100
    assert own["plan (modelloop/serving/plan.py)"] == 30
    assert own["resync (modelloop/handlers/resync.py)"] == 10
    assert own["collect (<frozen gc>)"] == 60
    # both lines of run and of resync add up, whatever their line numbers
    assert under["run (kopf/_core/reactor/running.py)"] == 40
    assert under["resync (modelloop/handlers/resync.py)"] == 40


def test_under_keeps_only_the_samples_passing_through_a_function() -> None:
    total, own, _ = tally(samples(CAPTURE), under="resync")
    assert total == 40
    assert "collect (<frozen gc>)" not in own

"""The churn example's stream (examples/trainer/churn.py): trainers and the demo rely on
it being re-readable by window and on the concept turning where and when it says."""

import numpy as np
import pytest
from examples.trainer.churn import SLICES, Concept, Shift, design, evaluate, fit, stream

SHIFTED = Concept(
    drift_per_day={"mobile": 0.0, "web": 0.0},
    examples_per_hour=20_000,
    shift=Shift("mobile", 1_800_000_000.0, 1.4),
)


def test_the_concept_travels_through_its_json_as_it_is() -> None:
    assert Concept.from_json(SHIFTED.to_json()) == SHIFTED
    assert Concept.from_json(None) == Concept() == Concept.from_json("")


def test_a_window_reads_the_same_examples_as_the_longer_stream_it_is_part_of() -> None:
    start = 1_800_000_000.0
    x, y, s, t = stream(start, start + 7200, SHIFTED)
    part = stream(start + 3000, start + 4000, SHIFTED)
    inside = (t >= start + 3000) & (t <= start + 4000)
    for whole, window in zip((x, y, s, t), part, strict=True):
        assert np.array_equal(whole[inside], window)


@pytest.mark.parametrize(
    ("slice_", "at", "angle"),
    [
        ("mobile", -1.0, 0.0),  # a second before the shift
        ("mobile", 0.0, 1.4),
        ("mobile", 3600.0, 1.4),
        ("web", 3600.0, 0.0),  # the other slice never turns
    ],
)
def test_the_boundary_turns_for_the_shifted_slice_from_the_shift_on(
    slice_: str, at: float, angle: float
) -> None:
    t = np.array([SHIFTED.shift.at + at])  # type: ignore[union-attr]
    assert SHIFTED.angles(np.array([SLICES.index(slice_)]), t)[0] == pytest.approx(angle)


def test_a_model_of_the_old_concept_fails_only_where_the_concept_turned() -> None:
    shift = SHIFTED.shift
    assert shift is not None
    before = stream(shift.at - 3600, shift.at - 1, SHIFTED)
    after = stream(shift.at, shift.at + 3600, SHIFTED)
    old = fit(design(before[0], before[2]), before[1])
    new = fit(design(after[0], after[2]), after[1])
    old_after = evaluate(old, after[0], after[1], after[2])
    new_after = evaluate(new, after[0], after[1], after[2])
    assert old_after[("accuracy", "mobile")] < 0.6 < 0.8 < new_after[("accuracy", "mobile")]
    assert abs(old_after[("accuracy", "web")] - new_after[("accuracy", "web")]) < 0.02

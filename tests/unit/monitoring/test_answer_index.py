"""A shared answer indexed by the labels its slots select on."""

import pytest

from modelloop.monitoring.promql import Sample
from modelloop.monitoring.readings import _index

SAMPLES = [
    Sample({"model": "a", "region": "eu"}, 1.0),
    Sample({"model": "a", "region": "us"}, 2.0),
    Sample({"model": "b", "region": "eu"}, 3.0),
    Sample({"model": "b"}, 4.0),  # no region: matches no selection on it
]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("model", "region"), {("a", "eu"): [1.0], ("a", "us"): [2.0], ("b", "eu"): [3.0]}),
        (("model",), {("a",): [1.0, 2.0], ("b",): [3.0, 4.0]}),
        (("region",), {("eu",): [1.0, 3.0], ("us",): [2.0]}),
        ((), {(): [1.0, 2.0, 3.0, 4.0]}),
    ],
)
def test_samples_are_found_by_their_values_of_the_selected_labels(
    labels: tuple[str, ...], expected: dict[tuple[str, ...], list[float]]
) -> None:
    index = _index(SAMPLES, labels)
    assert {key: [s.value for s in found] for key, found in index.items()} == expected

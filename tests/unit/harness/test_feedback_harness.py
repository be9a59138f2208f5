"""The harness's side of the feedback path: what a model server logs of a prediction (its
class and a calibrated score, from the truth the harness gives it), and that the service
reads the same prediction from a JSON batch and from the CloudEvents KServe's logger
would send for it (localcluster/modelserver.py, localcluster/feedback.py)."""

import json

import pytest
from localcluster.feedback import kserve_headers
from localcluster.modelserver import Logged, drawn, kserve_bodies, prediction_record, truth

from modelloop.feedback.kserve import REQUEST, RESPONSE, KServeConfig, KServePairer
from modelloop.feedback.records import Prediction


@pytest.mark.parametrize(
    ("accuracy", "correct", "label", "expected"),
    [
        (0.9, True, 1, (1, 0.9)),
        (0.9, True, 0, (0, pytest.approx(0.1))),
        (0.9, False, 1, (0, pytest.approx(0.1))),
        (0.9, False, 0, (1, 0.9)),
        # Under 0.5 the score would contradict the class: it stays at 0.5.
        (0.3, True, 1, (1, 0.5)),
        (0.85, True, None, (None, None)),
    ],
)
def test_the_class_follows_the_truth_and_the_score_is_the_accuracy(
    accuracy: float, correct: bool, label: int | None, expected: tuple[object, object]
) -> None:
    assert drawn(accuracy, correct, label) == expected


@pytest.mark.parametrize(
    ("request_", "expected"), [({"label": 1}, 1), ({"label": "0"}, 0), ({}, None)]
)
def test_the_truth_of_a_request(request_: dict[str, object], expected: int | None) -> None:
    assert truth(request_) == expected


def test_a_truth_other_than_0_or_1_is_refused() -> None:
    with pytest.raises(ValueError, match="want 0 or 1"):
        truth({"label": 2})


def test_json_and_kserve_logging_give_the_service_the_same_prediction() -> None:
    logged = Logged("r-17", "eu", predicted=1, score=0.75, time=1_700_000_000.5)
    as_json = Prediction.model_validate(prediction_record("churn", "churn-v2", "region", logged))

    pairer = KServePairer(KServeConfig(attributes={"region": "region"}))
    request, response = kserve_bodies("region", logged)
    found = []
    for kind, body in ((REQUEST, request), (RESPONSE, response)):
        headers = kserve_headers(kind, logged.id, "churn", "churn-v2", logged.time)
        added = pairer.add(headers, json.dumps(body).encode(), logged.time)
        assert isinstance(added, list), added
        found += added
    assert found == [as_json]

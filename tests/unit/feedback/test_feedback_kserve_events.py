"""KServe's logger events through the service (no HTTP): each pair becomes predictions
stored and counted like a batch's, a refused event is counted by its reason, and the
halves the pairer lets go are counted by why."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelloop.feedback.config import Settings
from modelloop.feedback.kserve import REQUEST, RESPONSE, Reject, Rejection
from modelloop.feedback.service import Accepted, Feedback
from modelloop.feedback.sqlite_store import SqliteStore

T0 = 1_700_000_000.0


@pytest.fixture
def feedback(tmp_path: Path) -> Iterator[Feedback]:
    settings = Settings.model_validate(
        {
            "attributes": [{"name": "region"}],
            "kserve": {"attributes": {"region": "region"}, "maxAge": "10s", "maxPending": 2},
        }
    )
    made = Feedback(settings, SqliteStore(tmp_path / "f.db", 3600, 1000))
    yield made
    made.store.close()


def headers(kind: str, event_id: str, **extra: str) -> dict[str, str]:
    return {
        "Ce-Specversion": "1.0",
        "Ce-Type": kind,
        "Ce-Id": event_id,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": "2023-11-14T22:13:20Z",  # T0
        "Ce-Inferenceservicename": "fraud",
        "Ce-Annotations": json.dumps({"modelloop.dev/version": "fraud-v2"}),
        "Content-Type": "application/json",
        **extra,
    }


def event(kind: str, event_id: str, payload: Any) -> tuple[dict[str, str], bytes]:
    return headers(kind, event_id), json.dumps(payload).encode()


def value(feedback: Feedback, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(feedback.metrics().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise AssertionError(f"no {name} {labels}")


def test_a_pair_is_stored_and_counted_as_predictions(feedback: Feedback) -> None:
    request = event(REQUEST, "r1", {"instances": [{"region": "eu"}, {"region": "us"}]})
    response = event(RESPONSE, "r1", {"predictions": [[0.2, 0.8], [0.9, 0.1]]})
    assert feedback.add_event(*response, T0) == Accepted(0, 0, 0, {})
    assert value(feedback, "modelloop_feedback_kserve_pending") == 1
    assert feedback.add_event(*request, T0 + 1) == Accepted(2, 0, 2, {})
    labels = json.dumps({"labels": [{"id": "r1/0", "label": 1, "time": T0 + 60}]})
    assert feedback.add_labels(labels.encode(), T0 + 60) == Accepted(1, 1, 0, {})
    eu = {"model": "fraud", "version": "fraud-v2", "region": "eu"}
    assert value(feedback, "modelloop_feedback_predictions_total", **eu) == 1
    assert value(feedback, "modelloop_feedback_correct_total", **eu) == 1
    assert value(feedback, "modelloop_feedback_confusion_total", outcome="tp", **eu) == 1
    assert value(feedback, "modelloop_feedback_label_delay_seconds_sum", **eu) == 60
    assert value(feedback, "modelloop_feedback_kserve_pending") == 0
    # The same request and response again: the pair's predictions are duplicates.
    feedback.add_event(*request, T0 + 2)
    assert feedback.add_event(*response, T0 + 2) == Accepted(2, 0, 0, {"duplicate": 2})


@pytest.mark.parametrize(
    ("event_headers", "body", "rejection"),
    [
        (headers(REQUEST, ""), b"{}", Rejection(Reject.MISSING_HEADER, "ce-id")),
        (headers("dev.example.other", "x"), b"{}", Rejection(Reject.UNSUPPORTED, "ce-type")),
        (headers(REQUEST, "x"), b"{", Rejection(Reject.NOT_JSON, "body")),
        (headers(REQUEST, "x"), b'{"rows": []}', Rejection(Reject.UNKNOWN_BODY, "body.instances")),
    ],
)
def test_a_refused_event_is_counted_by_reason(
    feedback: Feedback, event_headers: dict[str, str], body: bytes, rejection: Rejection
) -> None:
    assert feedback.add_event(event_headers, body, T0) == rejection
    assert value(feedback, "modelloop_feedback_kserve_rejected_total", reason=rejection.reason) == 1
    others = [r for r in Reject if r is not rejection.reason]
    assert [
        value(feedback, "modelloop_feedback_kserve_rejected_total", reason=r) for r in others
    ] == [0] * len(others)


def test_a_body_too_large_is_refused_naming_the_limit(feedback: Feedback) -> None:
    assert feedback.refuse_event(5 << 20) == Rejection(
        Reject.TOO_LARGE, "content-length", 4 << 20, 5 << 20
    )
    assert value(feedback, "modelloop_feedback_kserve_rejected_total", reason="TooLarge") == 1


def test_halves_let_go_are_counted_by_why(feedback: Feedback) -> None:
    for i in range(3):  # maxPending 2: the third evicts the first
        feedback.add_event(*event(REQUEST, f"e{i}", {"instances": [{}]}), T0 + i)
    assert value(feedback, "modelloop_feedback_kserve_dropped_total", reason="Evicted") == 1
    feedback.expire(T0 + 30)  # the service's periodic expiry: beyond maxAge (10s)
    assert value(feedback, "modelloop_feedback_kserve_dropped_total", reason="Expired") == 2
    assert value(feedback, "modelloop_feedback_kserve_pending") == 0

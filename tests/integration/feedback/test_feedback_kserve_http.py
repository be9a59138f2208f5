"""KServe's inference logger into the feedback service, over real HTTP against the service
process: request and response CloudEvents as the logger's agent sends them (binary mode,
the headers the cloudevents Go SDK writes; kserve/kserve pkg/logger), v1 and v2 bodies,
batches and single instances, the response before its request too, from several senders
at once; then labels through the SDK's FeedbackClient; /metrics counts correct
predictions and confusion outcomes per slice attribute as a direct count does. Refused
events get a 4xx naming the field and a counter by reason; unpaired halves expire and
are counted."""

import http.client
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from localcluster.feedback import FeedbackService, kserve_headers
from localcluster.waiting import wait_for
from prometheus_client.parser import text_string_to_metric_families

from modelloop.feedback.kserve import REQUEST, RESPONSE, Reject
from modelloop.sdk import FeedbackClient

T0 = 1_700_000_000.0
REGIONS = ("eu", "us", "apac")
MAX_BODY = 65536
SETTINGS = {
    "attributes": [{"name": "region"}],
    "kserve": {"attributes": {"region": "region"}},
    "maxBodyBytes": MAX_BODY,
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedbackService]:
    started = FeedbackService(tmp_path_factory.mktemp("kserve"), SETTINGS)
    yield started
    started.stop()
    assert "Traceback" not in started.process.log_text()


def ce_headers(
    kind: str, event_id: str, model: str, version: str, sent: float, content_type: str
) -> dict[str, str]:
    """The headers KServe's logger sends (``kserve_headers``), with the body's type."""
    return kserve_headers(kind, event_id, model, version, sent) | {"Content-Type": content_type}


def send(
    service: FeedbackService, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        connection.request("POST", "/v1/kserve", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


@dataclass(frozen=True)
class Row:
    """One instance of an inference request: its id to label, and the truth."""

    id: str
    region: str
    score: float  # the positive class's probability the model answered
    label: int


@dataclass(frozen=True)
class Inference:
    """One request to an InferenceService and its answer, as two logger events."""

    model: str
    version: str
    event_id: str
    request: dict[str, Any]
    response: dict[str, Any]
    rows: list[Row]
    response_first: bool


def inferences(rng: random.Random) -> list[Inference]:
    """fraud-v3 speaks v1 (object instances, rows of two probabilities), churn-v1 the open
    inference protocol (v2: named input tensors, an output of probabilities); batches of
    one and of several instances; every third pair arrives response first."""
    made = []
    for n in range(90):
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        size = 1 + n % 3
        regions = [rng.choice(REGIONS) for _ in range(size)]
        scores = [round(rng.random(), 3) for _ in range(size)]
        ids = [event_id] if size == 1 else [f"{event_id}/{i}" for i in range(size)]
        rows = [
            Row(i, r, s, int(rng.random() < (0.7 if r == "eu" else 0.4) * s + 0.15))
            for i, r, s in zip(ids, regions, scores, strict=True)
        ]
        request: dict[str, Any]
        response: dict[str, Any]
        if n % 2 == 0:
            request = {"instances": [{"region": r, "amount": rng.random() * 100} for r in regions]}
            response = {"predictions": [[round(1 - s, 3), s] for s in scores]}
            made.append(
                Inference("fraud", "fraud-v3", event_id, request, response, rows, n % 3 == 0)
            )
        else:
            request = {
                "id": event_id,
                "inputs": [
                    {"name": "region", "shape": [size], "datatype": "BYTES", "data": regions},
                    {
                        "name": "input-0",
                        "shape": [size, 2],
                        "datatype": "FP32",
                        "data": [x for _ in regions for x in (rng.random(), rng.random())],
                    },
                ],
            }
            response = {
                "model_name": "churn",
                "model_version": None,
                "id": event_id,
                "parameters": None,
                "outputs": [
                    {
                        "name": "output-0",
                        "shape": [size, 2],
                        "datatype": "FP32",
                        "data": [p for s in scores for p in (round(1 - s, 3), s)],
                    }
                ],
            }
            made.append(
                Inference("churn", "churn-v1", event_id, request, response, rows, n % 3 == 0)
            )
    return made


def deliver(service: FeedbackService, inference: Inference, sent: float) -> list[int]:
    """The logger's two events of one inference, in the order they arrive."""
    events = [(REQUEST, inference.request), (RESPONSE, inference.response)]
    if inference.response_first:
        events.reverse()
    statuses = []
    for kind, payload in events:
        headers = ce_headers(
            kind, inference.event_id, inference.model, inference.version, sent, "application/json"
        )
        status, _ = send(service, headers, json.dumps(payload).encode())
        statuses.append(status)
    return statuses


def samples(service: FeedbackService) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(service.metrics())
        for s in family.samples
    }


def at(got: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return got.get((name, frozenset(labels.items())), 0.0)


def test_the_loggers_events_and_the_sdks_labels_count_per_slice(
    service: FeedbackService,
) -> None:
    made = inferences(random.Random(13))
    with ThreadPoolExecutor(4) as senders:  # the logger's agent sends from several workers
        statuses = list(senders.map(lambda i: deliver(service, i[1], T0 + i[0]), enumerate(made)))
    assert statuses == [[200, 200]] * len(made)
    rows = [(inference, row) for inference in made for row in inference.rows]

    client = FeedbackClient(service.url, batch_size=50)
    sent = client.labels([{"id": row.id, "label": row.label, "time": T0 + 600} for _, row in rows])
    assert (sent.received, sent.joined, sent.waiting, sent.skipped) == (len(rows), len(rows), 0, {})

    expected: Counter[tuple[str, str, str, str]] = Counter()
    for inference, row in rows:
        positive, predicted = row.label == 1, row.score >= 0.5
        key = (inference.model, inference.version, row.region)
        expected[(*key, "predictions")] += 1
        expected[(*key, "correct")] += int(predicted) == row.label
        outcome = ("t" if predicted == positive else "f") + ("p" if predicted else "n")
        expected[(*key, outcome)] += 1
    got = samples(service)
    for model, version in (("fraud", "fraud-v3"), ("churn", "churn-v1")):
        for region in REGIONS:
            series = {"model": model, "version": version, "region": region}
            counted = {
                "predictions": at(got, "modelloop_feedback_predictions_total", **series),
                "labels": at(got, "modelloop_feedback_labels_total", **series),
                "correct": at(got, "modelloop_feedback_correct_total", **series),
                **{
                    o: at(got, "modelloop_feedback_confusion_total", outcome=o, **series)
                    for o in ("tp", "fp", "tn", "fn")
                },
            }
            want = {
                name: expected[model, version, region, name]
                for name in ("predictions", "correct", "tp", "fp", "tn", "fn")
            }
            assert counted == {"labels": want["predictions"], **want}, series
            assert 0 < want["correct"] < want["predictions"]  # both kinds, in every series
    assert at(got, "modelloop_feedback_kserve_pending") == 0
    rejected = [v for (n, _), v in got.items() if n == "modelloop_feedback_kserve_rejected_total"]
    assert rejected == [0] * len(Reject)

    # The logger never sends an event twice; a caller reusing a Ce-Id counts nothing twice.
    again = made[0]
    status, reply = send(
        service,
        ce_headers(REQUEST, again.event_id, again.model, again.version, T0, "application/json"),
        json.dumps(again.request).encode(),
    )
    assert status == 200  # its predictions were joined: the request waits for a response
    status, reply = send(
        service,
        ce_headers(RESPONSE, again.event_id, again.model, again.version, T0, "application/json"),
        json.dumps(again.response).encode(),
    )
    assert (status, reply["skipped"]) == (200, {"duplicate": len(again.rows)})


@pytest.mark.parametrize(
    ("change", "body", "status", "reply"),
    [
        ({"Ce-Id": ""}, b"{}", 400, {"error": "MissingHeader", "field": "ce-id"}),
        (
            {"Ce-Specversion": "0.3"},
            b"{}",
            400,
            {"error": "Unsupported", "field": "ce-specversion"},
        ),
        ({}, b'{"instances": [', 400, {"error": "NotJSON", "field": "body"}),
        ({}, b'{"rows": [1]}', 400, {"error": "UnknownBody", "field": "body.instances"}),
        (
            {"Ce-Annotations": "{}"},
            json.dumps({"instances": [{"region": "eu"}]}).encode(),
            200,  # waits; its response, below, finds no version
            None,
        ),
    ],
)
def test_a_bad_event_is_refused_naming_the_field(
    service: FeedbackService,
    change: dict[str, str],
    body: bytes,
    status: int,
    reply: dict[str, Any] | None,
) -> None:
    before = samples(service)
    headers = ce_headers(
        REQUEST, f"bad-{uuid.uuid4()}", "fraud", "fraud-v3", T0, "application/json"
    )
    got = send(service, headers | change, body)
    if reply is not None:
        assert got == (status, reply)
        reason = reply["error"]
    else:
        assert got[0] == status
        response = ce_headers(
            RESPONSE, headers["Ce-Id"], "fraud", "fraud-v3", T0, "application/json"
        )
        got = send(service, response, json.dumps({"predictions": [1]}).encode())
        assert got == (
            400,
            {"error": "MissingVersion", "field": "ce-annotations.modelloop.dev/version"},
        )
        reason = "MissingVersion"
    after = samples(service)
    name = "modelloop_feedback_kserve_rejected_total"
    assert at(after, name, reason=reason) == at(before, name, reason=reason) + 1


def test_a_body_beyond_the_limit_is_refused_before_it_is_read(service: FeedbackService) -> None:
    body = json.dumps({"instances": [{"region": "eu", "x": "y" * 100}] * 700}).encode()
    assert MAX_BODY < len(body) < 2 * MAX_BODY
    headers = ce_headers(REQUEST, "huge", "fraud", "fraud-v3", T0, "application/json")
    status, reply = send(service, headers, body)
    assert (status, reply["error"], reply["field"], reply["expected"]) == (
        413,
        "TooLarge",
        "content-length",
        MAX_BODY,
    )


def test_a_request_without_its_response_expires_and_is_counted(tmp_path: Path) -> None:
    service = FeedbackService(
        tmp_path, {**SETTINGS, "expireEvery": "1s", "kserve": {"maxAge": "1s"}}, name="expiring"
    )
    try:
        headers = ce_headers(REQUEST, "lonely", "fraud", "fraud-v3", T0, "application/json")
        assert send(service, headers, b'{"instances": [{"region": "eu"}]}')[0] == 200
        wait_for(
            lambda: (
                at(samples(service), "modelloop_feedback_kserve_dropped_total", reason="Expired")
                == 1
            ),
            10,
            "the waiting request to expire",
        )
        got = samples(service)
        assert at(got, "modelloop_feedback_kserve_pending") == 0
        assert at(got, "modelloop_feedback_kserve_dropped_total", reason="Evicted") == 0
        # Its response, late: it waits in turn, and no prediction is made.
        response = ce_headers(RESPONSE, "lonely", "fraud", "fraud-v3", T0, "application/json")
        assert send(service, response, b'{"predictions": [1]}') == (
            200,
            {"received": 0, "joined": 0, "waiting": 0, "skipped": {}},
        )
        assert at(samples(service), "modelloop_feedback_kserve_pending") == 1
    finally:
        service.stop()

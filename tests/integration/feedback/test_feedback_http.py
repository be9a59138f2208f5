"""The feedback service's HTTP edge, on a real process: bad input gets a 4xx naming the
field and a counter by reason, a full store a 503 to retry, concurrent clients are each
counted once, records expire at the horizon, and SIGTERM ends it cleanly."""

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster.feedback import FeedbackService, post
from localcluster.waiting import wait_for
from prometheus_client.parser import text_string_to_metric_families

T0 = 1_700_000_000.0


def prediction(id_: str, **fields: Any) -> dict[str, Any]:
    record = {"id": id_, "model": "churn", "version": "v1", "time": T0, "predicted": "1"}
    return record | fields


def label(id_: str) -> dict[str, Any]:
    return {"id": id_, "label": "1", "time": T0 + 5}


def sample(service: FeedbackService, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(service.metrics()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def raw(
    service: FeedbackService, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FeedbackService]:
    started = FeedbackService(
        tmp_path, {"capacity": 50, "maxBodyBytes": 4096, "horizon": "3s", "expireEvery": "1s"}
    )
    yield started
    started.stop()
    assert "Traceback" not in started.process.log_text()


def test_bad_input_is_refused_with_the_field_named(service: FeedbackService) -> None:
    url = f"{service.url}/v1/predictions"
    status, reply = post(url, {"predictions": [prediction("a"), prediction("b", score=2)]})
    assert status == 400
    assert reply["error"] == "invalid"
    assert [e["field"] for e in reply["errors"]] == ["predictions.1.score"]
    assert post(url, b'{"predictions": [')[0] == 400
    status, reply = post(f"{service.url}/v1/labels", {"labels": [{"id": "a", "time": T0}]})
    assert (status, [e["field"] for e in reply["errors"]]) == (400, ["labels.0.label"])
    # Beyond maxBodyBytes: refused before it is read, with or without a Content-Length.
    big = json.dumps({"predictions": [prediction(str(i)) for i in range(100)]}).encode()
    assert post(url, big)[0] == 413
    chunks = iter([big[:3000], big[3000:]])
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    connection.request("POST", "/v1/predictions", body=chunks, encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()
    assert raw(service, "GET", "/v1/predictions")[0] == 405
    assert raw(service, "POST", "/v1/nothing", b"{}")[0] == 404
    counts = {
        (kind, reason): sample(
            service, "modelloop_feedback_bad_requests_total", kind=kind, reason=reason
        )
        for kind in ("prediction", "label")
        for reason in ("invalid", "not_json", "too_large")
    }
    assert counts == {
        ("prediction", "invalid"): 1,
        ("prediction", "not_json"): 1,
        ("prediction", "too_large"): 2,
        ("label", "invalid"): 1,
        ("label", "not_json"): 0,
        ("label", "too_large"): 0,
    }
    assert sample(service, "modelloop_feedback_pending", kind="prediction") == 0
    assert raw(service, "GET", "/healthz")[:2] == (200, b"ok")


def test_a_full_store_answers_503_and_a_retry_counts_once(service: FeedbackService) -> None:
    first = [prediction(f"p{i}") for i in range(30)]
    second = [prediction(f"q{i}") for i in range(30)]
    assert service.predictions(first)[0] == 200
    status, reply = service.predictions(second)
    assert (status, reply["waiting"], reply["skipped"]) == (503, 20, {"capacity": 10})
    status, _, headers = raw(
        service, "POST", "/v1/predictions", json.dumps({"predictions": second}).encode()
    )
    assert (status, headers["Retry-After"]) == (503, "30")
    assert service.labels([label(f"p{i}") for i in range(10)])[0] == 200  # frees room
    status, reply = service.predictions(second)  # the client's retry
    assert (status, reply["waiting"], reply["skipped"]) == (200, 10, {"duplicate": 20})
    labels = {"model": "churn", "version": "v1"}
    assert sample(service, "modelloop_feedback_predictions_total", **labels) == 60
    assert (
        sample(service, "modelloop_feedback_refused_total", kind="prediction", reason="capacity")
        == 20
    )


def test_concurrent_clients_are_each_counted_once(service: FeedbackService) -> None:
    """Eight clients send the same 40 predictions and labels in shuffled batches."""
    ids = [f"c{i}" for i in range(40)]
    errors: list[str] = []

    def client(n: int) -> None:
        order = ids[n % 5 :] + ids[: n % 5]
        try:
            for start in range(0, len(order), 8):
                batch = order[start : start + 8]
                for status, reply in (
                    service.predictions([prediction(i) for i in batch]),
                    service.labels([label(i) for i in reversed(batch)]),
                ):
                    if status != 200:
                        errors.append(f"{status} {reply}")
        except Exception as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    labels = {"model": "churn", "version": "v1"}
    assert sample(service, "modelloop_feedback_predictions_total", **labels) == 40
    assert sample(service, "modelloop_feedback_labels_total", **labels) == 40
    assert sample(service, "modelloop_feedback_correct_total", **labels) == 40
    assert (
        sample(service, "modelloop_feedback_refused_total", kind="label", reason="duplicate")
        == 7 * 40
    )


def test_a_sender_hanging_up_mid_body_is_counted_and_nothing_taken(
    service: FeedbackService,
) -> None:
    """A sender whose timeout runs out while its request waits to be read hangs up with
    its body half sent: the service counts it by kind, takes nothing, and logs no error
    (the fixture reads the log)."""
    whole = json.dumps({"predictions": [prediction("half")]}).encode()
    for path in ("/v1/predictions", "/v1/labels", "/v1/kserve", "/v1/predictions"):
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sender:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(whole)}\r\n\r\n"
            sender.sendall(head.encode() + whole[: len(whole) // 2])
    counted = {"prediction": 2.0, "label": 1.0, "kserve": 1.0}
    wait_for(
        lambda: (
            {
                kind: sample(service, "modelloop_feedback_abandoned_total", kind=kind)
                for kind in counted
            }
            == counted
        ),
        10,
        "the hung-up requests to be counted",
    )
    assert sample(service, "modelloop_feedback_pending", kind="prediction") == 0
    assert service.predictions([prediction("half")])[1]["waiting"] == 1  # none was taken


def test_records_expire_at_the_horizon(service: FeedbackService) -> None:
    service.predictions([prediction("old"), prediction("older")])
    service.labels([label("stray")])
    assert sample(service, "modelloop_feedback_pending", kind="prediction") == 2
    wait_for(
        lambda: sample(service, "modelloop_feedback_expired_total", kind="prediction") == 2,
        15,
        "the predictions to expire",
    )
    assert sample(service, "modelloop_feedback_expired_total", kind="label") == 1
    assert sample(service, "modelloop_feedback_pending", kind="prediction") == 0
    # Its label, late beyond the horizon, waits in turn: no join, no count.
    assert service.labels([label("old")])[1]["waiting"] == 1


def test_sigterm_ends_the_service_cleanly(service: FeedbackService) -> None:
    service.predictions([prediction("a")])
    started = time.monotonic()
    service.stop()
    assert not service.process.running
    assert time.monotonic() - started < 5
    service.start()
    assert sample(service, "modelloop_feedback_pending", kind="prediction") == 1

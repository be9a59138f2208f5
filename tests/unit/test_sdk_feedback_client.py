"""The SDK's feedback client against a small stdlib HTTP server on the loopback playing the
feedback service: it answers each request with the next scripted reply and records what
it was sent."""

from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.receiver import Receiver, Reply, receiving

from modelloop.feedback.records import Label, Prediction
from modelloop.sdk import FeedbackClient, FeedbackError, Sent


def counts(sent: dict[str, Any]) -> dict[str, Any]:
    """What the service answers by default: counts of the records sent."""
    records = next(iter(sent.values()))
    return {
        "received": len(records),
        "joined": 1,
        "waiting": len(records) - 1,
        "skipped": {"duplicate": 1},
    }


@pytest.fixture
def service() -> Iterator[Receiver]:
    with receiving(Reply(body=counts)) as started:
        yield started


def client(service: Receiver, **options: Any) -> FeedbackClient:
    return FeedbackClient(service.url, backoff=0.01, **options)


def prediction(i: int) -> dict[str, Any]:
    return {"id": f"r{i}", "model": "fraud", "version": "v1", "predicted": "1", "score": 0.5}


def test_records_go_in_batches_and_the_answers_add_up(service: Receiver) -> None:
    sent = client(service, batch_size=2).predictions(prediction(i) for i in range(5))
    assert [(r.path, len(r.body["predictions"])) for r in service.received] == [
        ("/v1/predictions", 2),
        ("/v1/predictions", 2),
        ("/v1/predictions", 1),
    ]
    assert sent == Sent(received=5, joined=3, waiting=2, skipped={"duplicate": 3})
    # A dict without a time is stamped when sent; the fields go as they are.
    first = service.received[0].body["predictions"][0]
    assert first["time"] > 1_700_000_000
    assert {k: v for k, v in first.items() if k != "time"} == prediction(0)


def test_records_of_the_package_go_in_their_wire_form(service: Receiver) -> None:
    client(service).labels(
        [Label(id="r1", label=0.0, time=5.0), Label(id="r2", label="no", time=6.0)]
    )
    client(service).predictions(
        [
            Prediction(
                id="r3", model="m", version="v", time=1.0, attributes={"a": "x"}, predicted=2.5
            )
        ]
    )
    assert (service.received[0].path, service.received[0].body) == (
        "/v1/labels",
        {
            "labels": [
                {"id": "r1", "label": 0.0, "time": 5.0},
                {"id": "r2", "label": "no", "time": 6.0},
            ]
        },
    )
    assert service.received[1].body["predictions"] == [
        {
            "id": "r3",
            "model": "m",
            "version": "v",
            "time": 1.0,
            "attributes": {"a": "x"},
            "predicted": 2.5,
            "score": None,
        }
    ]


def test_a_refused_batch_raises_the_services_reason_and_fields(service: Receiver) -> None:
    service.replies.append(
        Reply(
            400,
            {
                "error": "invalid",
                "errors": [
                    {
                        "field": "predictions.0.score",
                        "message": "Input should be less than or equal to 1",
                        "type": "less_than_equal",
                    }
                ],
            },
        )
    )
    with pytest.raises(FeedbackError) as raised:
        client(service).predictions([prediction(0) | {"score": 3}])
    assert (raised.value.status, raised.value.reason) == (400, "invalid")
    assert raised.value.errors[0]["field"] == "predictions.0.score"
    assert str(raised.value) == (
        "feedback service: HTTP 400 invalid: "
        "predictions.0.score: Input should be less than or equal to 1"
    )
    assert len(service.received) == 1  # never sent again


def test_a_full_store_is_asked_again_as_it_says(service: Receiver) -> None:
    full = {"received": 2, "joined": 0, "waiting": 1, "skipped": {"capacity": 1}}
    service.replies += [
        Reply(503, full, {"Retry-After": "0"}),
        Reply(502, {"error": "bad gateway"}),
    ]
    sent = client(service, retries=2).predictions([prediction(0), prediction(1)])
    assert len(service.received) == 3
    assert service.received[0].body == service.received[2].body  # the same batch, whole
    assert sent.received == 2


def test_retries_run_out(service: Receiver) -> None:
    service.replies += [Reply(503, {"error": "full"}, {"Retry-After": "0"})] * 3
    with pytest.raises(FeedbackError, match="HTTP 503 full"):
        client(service, retries=2).labels([{"id": "a", "label": "1"}])
    assert len(service.received) == 3


def test_a_batch_too_large_is_split(service: Receiver) -> None:
    service.replies += [Reply(413, {"error": "too_large"}), Reply(413, {"error": "too_large"})]
    sent = client(service).predictions(prediction(i) for i in range(4))
    assert [len(r.body["predictions"]) for r in service.received] == [4, 2, 1, 1, 2]
    assert sent.received == 4
    service.replies.append(Reply(413, {"error": "too_large"}))
    with pytest.raises(FeedbackError, match="413 too_large"):
        client(service).predictions([prediction(9)])


def test_an_unreachable_service_raises_after_the_retries() -> None:
    unreachable = Receiver()
    unreachable.stop()  # the port is closed now
    with pytest.raises(FeedbackError, match="HTTP 0 unreachable") as raised:
        FeedbackClient(unreachable.url, retries=1, backoff=0.01).labels([{"id": "a", "label": 1}])
    assert raised.value.status == 0


def test_a_request_has_a_timeout(service: Receiver) -> None:
    service.replies.append(Reply(delay=5.0))
    with pytest.raises(FeedbackError, match="unreachable"):
        client(service, timeout=0.2, retries=0).labels([{"id": "a", "label": 1}])


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FeedbackClient("http://x", batch_size=0)

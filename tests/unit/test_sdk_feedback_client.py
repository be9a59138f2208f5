"""The SDK's feedback client against a small stdlib HTTP server on the loopback playing the
feedback service: it answers each request with the next scripted reply and records what
it was sent."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from modelloop.feedback.records import Label, Prediction
from modelloop.sdk import FeedbackClient, FeedbackError, Sent


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None  # None: counts of what was sent
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Service:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answered = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                service.received.append((self.path, sent))
                reply = service.replies.pop(0) if service.replies else Reply()
                if reply.delay:
                    service.answered.wait(reply.delay)
                records = next(iter(sent.values()))
                body = reply.body or {
                    "received": len(records),
                    "joined": 1,
                    "waiting": len(records) - 1,
                    "skipped": {"duplicate": 1},
                }
                data = json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout cases)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.answered.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def service() -> Iterator[Service]:
    started = Service()
    yield started
    started.stop()


def client(service: Service, **options: Any) -> FeedbackClient:
    return FeedbackClient(service.url, backoff=0.01, **options)


def prediction(i: int) -> dict[str, Any]:
    return {"id": f"r{i}", "model": "fraud", "version": "v1", "predicted": "1", "score": 0.5}


def test_records_go_in_batches_and_the_answers_add_up(service: Service) -> None:
    sent = client(service, batch_size=2).predictions(prediction(i) for i in range(5))
    assert [(path, len(body["predictions"])) for path, body in service.received] == [
        ("/v1/predictions", 2),
        ("/v1/predictions", 2),
        ("/v1/predictions", 1),
    ]
    assert sent == Sent(received=5, joined=3, waiting=2, skipped={"duplicate": 3})
    # A dict without a time is stamped when sent; the fields go as they are.
    first = service.received[0][1]["predictions"][0]
    assert first["time"] > 1_700_000_000
    assert {k: v for k, v in first.items() if k != "time"} == prediction(0)


def test_records_of_the_package_go_in_their_wire_form(service: Service) -> None:
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
    assert service.received[0] == (
        "/v1/labels",
        {
            "labels": [
                {"id": "r1", "label": 0.0, "time": 5.0},
                {"id": "r2", "label": "no", "time": 6.0},
            ]
        },
    )
    assert service.received[1][1]["predictions"] == [
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


def test_a_refused_batch_raises_the_services_reason_and_fields(service: Service) -> None:
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


def test_a_full_store_is_asked_again_as_it_says(service: Service) -> None:
    full = {"received": 2, "joined": 0, "waiting": 1, "skipped": {"capacity": 1}}
    service.replies += [
        Reply(503, full, {"Retry-After": "0"}),
        Reply(502, {"error": "bad gateway"}),
    ]
    sent = client(service, retries=2).predictions([prediction(0), prediction(1)])
    assert len(service.received) == 3
    assert service.received[0][1] == service.received[2][1]  # the same batch, whole
    assert sent.received == 2


def test_retries_run_out(service: Service) -> None:
    service.replies += [Reply(503, {"error": "full"}, {"Retry-After": "0"})] * 3
    with pytest.raises(FeedbackError, match="HTTP 503 full"):
        client(service, retries=2).labels([{"id": "a", "label": "1"}])
    assert len(service.received) == 3


def test_a_batch_too_large_is_split(service: Service) -> None:
    service.replies += [Reply(413, {"error": "too_large"}), Reply(413, {"error": "too_large"})]
    sent = client(service).predictions(prediction(i) for i in range(4))
    assert [len(body["predictions"]) for _, body in service.received] == [4, 2, 1, 1, 2]
    assert sent.received == 4
    service.replies.append(Reply(413, {"error": "too_large"}))
    with pytest.raises(FeedbackError, match="413 too_large"):
        client(service).predictions([prediction(9)])


def test_an_unreachable_service_raises_after_the_retries() -> None:
    unreachable = Service()
    unreachable.stop()  # the port is closed now
    with pytest.raises(FeedbackError, match="HTTP 0 unreachable") as raised:
        FeedbackClient(unreachable.url, retries=1, backoff=0.01).labels([{"id": "a", "label": 1}])
    assert raised.value.status == 0


def test_a_request_has_a_timeout(service: Service) -> None:
    service.replies.append(Reply(delay=5.0))
    with pytest.raises(FeedbackError, match="unreachable"):
        client(service, timeout=0.2, retries=0).labels([{"id": "a", "label": 1}])


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FeedbackClient("http://x", batch_size=0)

"""The delivery queue: in order per receiver, retries with backoff, bounded, and a
receiver that hangs holds up no other. Real worker threads; ``send`` is played here."""

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from localcluster.waiting import wait_for
from prometheus_client import CollectorRegistry

from modelloop.notify.delivery import (
    Delivery,
    DeliveryError,
    Dispatcher,
    NotificationTelemetry,
    RetryPolicy,
    retryable_status,
)

Send = Callable[[Delivery], None]


def delivery(receiver: str, text: str, type_: str = "webhook") -> Delivery:
    return Delivery(("ns", "fraud", receiver), type_, ("ns", "s", "url"), text.encode(), text)


class Harness:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dispatchers: list[Dispatcher] = []

    def dispatcher(
        self,
        send: Send,
        attempts: int = 3,
        backoff: float = 0.01,
        capacity: int = 100,
        workers: int = 4,
    ) -> Dispatcher:
        telemetry = NotificationTelemetry(self.registry)
        made = Dispatcher(send, RetryPolicy(attempts, backoff), telemetry, capacity, workers)
        self.dispatchers.append(made)
        return made

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels or {"type": "webhook"}) or 0.0


@pytest.fixture
def harness() -> Iterator[Harness]:
    made = Harness()
    yield made
    for dispatcher in made.dispatchers:
        dispatcher.stop()


def test_each_receiver_gets_its_notifications_in_order(harness: Harness) -> None:
    received: list[tuple[str, str]] = []
    dispatcher = harness.dispatcher(lambda d: received.append((d.receiver[2], d.body.decode())))
    dispatcher.start()
    for i in range(20):
        dispatcher.submit(delivery("a" if i % 2 else "b", str(i)))
    wait_for(lambda: len(received) == 20, 10, "20 sent")
    assert [t for r, t in received if r == "a"] == [str(i) for i in range(1, 20, 2)]
    assert [t for r, t in received if r == "b"] == [str(i) for i in range(0, 20, 2)]
    assert harness.count("modelloop_notifications_sent_total") == 20
    assert dispatcher.pending() == 0


def test_a_receiver_that_hangs_holds_up_no_other(harness: Harness) -> None:
    release = threading.Event()
    received: list[str] = []

    def send(d: Delivery) -> None:
        if d.receiver[2] == "hangs":
            release.wait(10)
            raise DeliveryError("timeout", "no answer within 10s", retryable=True)
        received.append(d.body.decode())

    dispatcher = harness.dispatcher(send, attempts=1, workers=2)
    dispatcher.start()
    for i in range(3):
        dispatcher.submit(delivery("hangs", f"h{i}"))
        dispatcher.submit(delivery("ok", f"ok{i}"))
    wait_for(lambda: received == ["ok0", "ok1", "ok2"], 5, "the other receiver served")
    assert dispatcher.pending() == 3  # the one hanging in flight and two behind it
    release.set()
    wait_for(lambda: harness.count("modelloop_notifications_failed_total") == 3, 5, "3 failed")
    assert (
        harness.count(
            "modelloop_notification_attempts_failed_total", type="webhook", error="timeout"
        )
        == 3
    )


def test_a_failed_attempt_is_retried_after_a_backoff_that_doubles(harness: Harness) -> None:
    attempts: list[float] = []

    def send(d: Delivery) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise DeliveryError("http", "HTTP 503", retryable=True)

    dispatcher = harness.dispatcher(send, attempts=3, backoff=0.1)
    dispatcher.start()
    dispatcher.submit(delivery("a", "x"))
    wait_for(lambda: harness.count("modelloop_notifications_sent_total") == 1, 5, "sent")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    assert (
        harness.count("modelloop_notification_attempts_failed_total", type="webhook", error="http")
        == 2
    )
    assert harness.count("modelloop_notifications_failed_total") == 0


def test_a_retry_keeps_the_receivers_order(harness: Harness) -> None:
    received: list[str] = []
    failed_once: set[str] = set()

    def send(d: Delivery) -> None:
        text = d.body.decode()
        if text == "first" and text not in failed_once:
            failed_once.add(text)
            raise DeliveryError("connection", "Connection refused", retryable=True)
        received.append(text)

    dispatcher = harness.dispatcher(send, backoff=0.05)
    dispatcher.submit(delivery("a", "first"))
    dispatcher.submit(delivery("a", "second"))
    dispatcher.start()
    wait_for(lambda: len(received) == 2, 5, "both sent")
    assert received == ["first", "second"]


@pytest.mark.parametrize(
    ("error", "attempts_made"),
    [
        (DeliveryError("http", "HTTP 404", retryable=False), 1),  # a wrong URL stays wrong
        (DeliveryError("url", "the URL is not http(s)", retryable=False), 1),
        (DeliveryError("timeout", "no answer within 1s", retryable=True), 3),
        (RuntimeError("a bug"), 3),  # anything else: retried, still bounded
    ],
)
def test_a_notification_is_given_up_after_its_attempts(
    harness: Harness, error: Exception, attempts_made: int
) -> None:
    calls: list[Delivery] = []

    def send(d: Delivery) -> None:
        calls.append(d)
        raise error

    dispatcher = harness.dispatcher(send, attempts=3)
    dispatcher.start()
    dispatcher.submit(delivery("a", "x", type_="slack"))
    wait_for(
        lambda: harness.count("modelloop_notifications_failed_total", type="slack") == 1,
        5,
        "given up",
    )
    assert len(calls) == attempts_made
    assert harness.count("modelloop_notifications_sent_total", type="slack") == 0


def test_a_full_queue_drops_its_oldest_and_counts_it(harness: Harness) -> None:
    received: list[str] = []
    dispatcher = harness.dispatcher(lambda d: received.append(d.body.decode()), capacity=2)
    for text in ("1", "2", "3", "4"):
        dispatcher.submit(delivery("a", text, type_="teams"))
    dispatcher.submit(delivery("b", "other", type_="teams"))  # another receiver's own queue
    assert harness.count("modelloop_notifications_dropped_total", type="teams") == 2
    assert dispatcher.pending() == 3
    assert harness.registry.get_sample_value("modelloop_notifications_pending") == 3
    dispatcher.start()
    wait_for(lambda: len(received) == 3, 5, "the rest sent")
    assert sorted(received) == ["3", "4", "other"]


@pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (8, 60.0)])
def test_backoff_doubles_up_to_its_cap(failures: int, delay: float) -> None:
    assert RetryPolicy(attempts=10, backoff=1.0, max_backoff=60.0).delay(failures) == delay


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(400, False), (401, False), (403, False), (404, False), (408, True), (410, False)],
        *[(413, False), (429, True), (500, True), (502, True), (503, True), (504, True)],
    ],
)
def test_which_answers_are_worth_another_attempt(status: int, retryable: bool) -> None:
    assert retryable_status(status) is retryable

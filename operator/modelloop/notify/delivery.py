"""Delivery of rendered notifications: a bounded queue per receiver, a few worker
threads, a timeout per attempt, retries with exponential backoff.

- Never blocks the caller: ``submit`` only appends under a lock. A receiver's queue
  holds at most ``capacity`` notifications; a full queue drops its oldest (counted).
- In order per receiver: one notification of a receiver is in flight at a time, and a
  retry waits at the head of its queue (the receiver backs off, its later
  notifications wait behind it).
- One slow receiver holds at most one worker at a time: a receiver that hangs until
  its timeout delays its own notifications, never another receiver's (while fewer
  receivers hang than there are workers).
- Bounded: ``attempts`` per notification; a retry only after a timeout, no
  connection, 408, 429 or 5xx, never after another 4xx or a URL that is not http(s).
  Redirects are not followed.

The URL is resolved at each attempt (``send`` reads the Secret), so a rotated URL needs
no restart, and it is never logged or counted: only the receiver's name and the error's
kind are.
"""

import http.client
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)
ReceiverKey = tuple[str, str, str]  # (namespace, model, name); ("", "", name): the operator's


class DeliveryError(Exception):
    """Why an attempt failed: ``kind`` (timeout, connection, http, secret, url) is
    counted, ``detail`` is logged; neither carries the URL."""

    def __init__(self, kind: str, detail: str, retryable: bool) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: float = 1.0  # seconds before the second attempt; doubled before each next one
    max_backoff: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        return float(min(self.backoff * 2 ** (failures - 1), self.max_backoff))


def retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


@dataclass(frozen=True)
class Delivery:
    receiver: ReceiverKey
    type: str  # the receiver's kind (webhook, slack, teams): the metrics' label
    secret: tuple[str, str, str]  # where the URL is: the Secret's namespace, name and key
    body: bytes
    describe: str  # for the log: what, about which Model, to which receiver


class NotificationTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "modelloop_notifications_sent",
            "Notifications a receiver accepted (2xx), by receiver type",
            ("type",),
            registry=registry,
        )
        self.failed = Counter(
            "modelloop_notifications_failed",
            "Notifications given up after their last attempt, by receiver type",
            ("type",),
            registry=registry,
        )
        self.dropped = Counter(
            "modelloop_notifications_dropped",
            "Notifications dropped, oldest first, from a receiver's full queue",
            ("type",),
            registry=registry,
        )
        self.failed_attempts = Counter(
            "modelloop_notification_attempts_failed",
            "Failed delivery attempts, by receiver type and error (timeout, connection, "
            "http, secret, url)",
            ("type", "error"),
            registry=registry,
        )
        self.pending = Gauge(
            "modelloop_notifications_pending",
            "Notifications queued or in flight",
            registry=registry,
        )


@dataclass
class _Queued:
    delivery: Delivery
    order: int  # submission order: the oldest head goes first across receivers
    failures: int = 0


@dataclass
class _State:
    queues: dict[ReceiverKey, deque[_Queued]] = field(default_factory=dict)
    in_flight: set[ReceiverKey] = field(default_factory=set)
    not_before: dict[ReceiverKey, float] = field(default_factory=dict)  # backing off
    submitted: int = 0
    stopped: bool = False


class Dispatcher:
    def __init__(
        self,
        send: Callable[[Delivery], None],
        policy: RetryPolicy,
        telemetry: NotificationTelemetry,
        capacity: int = 100,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``send`` makes one attempt; it raises DeliveryError (or anything else, taken as
        a retryable connection error) when the attempt failed."""
        self._send, self._policy, self._telemetry = send, policy, telemetry
        self._capacity, self._clock = capacity, clock
        self._state = _State()
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"notify-{i}", daemon=True)
            for i in range(workers)
        ]
        telemetry.pending.set_function(self.pending)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop taking work; attempts in flight end within their own timeout."""
        with self._changed:
            self._state.stopped = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def pending(self) -> int:
        with self._changed:
            state = self._state
            return sum(len(q) for q in state.queues.values()) + len(state.in_flight)

    def submit(self, delivery: Delivery) -> None:
        with self._changed:
            state = self._state
            state.submitted += 1
            queue = state.queues.setdefault(delivery.receiver, deque())
            queue.append(_Queued(delivery, state.submitted))
            self._trim(queue)
            self._changed.notify()

    def _trim(self, queue: deque[_Queued]) -> None:
        while len(queue) > self._capacity:
            dropped = queue.popleft().delivery
            self._telemetry.dropped.labels(dropped.type).inc()
            log.warning("%s: dropped, the receiver's queue is full", dropped.describe)

    def _work(self) -> None:
        while True:
            with self._changed:
                taken = self._take()
                while taken is None:
                    if self._state.stopped:
                        return
                    self._changed.wait(self._wait())
                    taken = self._take()
            error = self._attempt(taken.delivery)
            with self._changed:
                self._settle(taken, error)
                self._changed.notify_all()

    def _ready(self) -> list[ReceiverKey]:
        state, now = self._state, self._clock()
        return [
            key
            for key, queue in state.queues.items()
            if queue and key not in state.in_flight and state.not_before.get(key, 0.0) <= now
        ]

    def _take(self) -> _Queued | None:
        state = self._state
        if state.stopped:
            return None
        ready = self._ready()
        if not ready:
            return None
        key = min(ready, key=lambda k: state.queues[k][0].order)
        state.in_flight.add(key)
        return state.queues[key].popleft()

    def _wait(self) -> float | None:
        """Until the first receiver backing off may try again; None: until a change."""
        state, now = self._state, self._clock()
        waits = [
            when - now
            for key, when in state.not_before.items()
            if state.queues.get(key) and key not in state.in_flight
        ]
        return max(min(waits), 0.0) if waits else None

    def _attempt(self, delivery: Delivery) -> DeliveryError | None:
        try:
            self._send(delivery)
        except DeliveryError as error:
            return error
        except Exception as error:  # a bug or an unexpected transport error: still bounded
            log.exception("%s: unexpected error", delivery.describe)
            return DeliveryError("connection", type(error).__name__, retryable=True)
        return None

    def _settle(self, taken: _Queued, error: DeliveryError | None) -> None:
        state, delivery = self._state, taken.delivery
        key = delivery.receiver
        state.in_flight.discard(key)
        state.not_before.pop(key, None)
        queue = state.queues.setdefault(key, deque())
        if error is None:
            self._telemetry.sent.labels(delivery.type).inc()
        else:
            taken.failures += 1
            self._telemetry.failed_attempts.labels(delivery.type, error.kind).inc()
            attempts = self._policy.attempts
            if error.retryable and taken.failures < attempts:
                delay = self._policy.delay(taken.failures)
                log.warning(
                    "%s: attempt %d of %d failed (%s), again in %gs",
                    *(delivery.describe, taken.failures, attempts, error, delay),
                )
                queue.appendleft(taken)
                state.not_before[key] = self._clock() + delay
                self._trim(queue)
            else:
                self._telemetry.failed.labels(delivery.type).inc()
                log.warning(
                    "%s: failed after %d attempt(s): %s", delivery.describe, taken.failures, error
                )
        if not queue:
            del state.queues[key]
            state.not_before.pop(key, None)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a hop: a redirect could lead anywhere (SSRF)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(url: str, body: bytes, timeout: float) -> None:
    """One POST; returns on a 2xx, raises DeliveryError otherwise."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError("url", "the URL is not http(s)", retryable=False)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "modelloop-notifier"},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as error:
        error.close()
        raise DeliveryError("http", f"HTTP {error.code}", retryable_status(error.code)) from None
    except TimeoutError:
        raise DeliveryError("timeout", f"no answer within {timeout:g}s", retryable=True) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            detail = f"no answer within {timeout:g}s"
            raise DeliveryError("timeout", detail, retryable=True) from None
        raise DeliveryError("connection", _cause(error.reason), retryable=True) from None
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryError("connection", _cause(error), retryable=True) from None
    except ValueError:
        raise DeliveryError("url", "the URL is malformed", retryable=False) from None


def _cause(reason: object) -> str:
    """An error's kind without its text, which may name the host."""
    strerror = getattr(reason, "strerror", None)
    return str(strerror) if strerror else type(reason).__name__

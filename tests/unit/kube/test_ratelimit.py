"""The write limit: a token bucket that rollbacks pass."""

import threading

import pytest

from modelloop.kube.ratelimit import WriteLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "burst", "writes", "elapsed", "waits"),
    [
        # A burst is free; the next write waits for a token.
        (10.0, 3, 4, 0.0, [0.0, 0.0, 0.0, 0.1]),
        # Tokens never gather beyond the burst, however long the quiet.
        (10.0, 2, 3, 60.0, [0.0, 0.0, 0.1]),
        # Writes queued behind each other wait longer and longer.
        (2.0, 1, 3, 0.0, [0.0, 0.5, 1.0]),
    ],
)
def test_writes_wait_for_tokens(
    rate: float, burst: int, writes: int, elapsed: float, waits: list[float]
) -> None:
    clock = Clock()
    limiter = WriteLimiter(rate, burst, clock)
    clock.now = elapsed
    assert [round(limiter.reserve(), 6) for _ in range(writes)] == waits


def test_tokens_come_back_with_time() -> None:
    clock = Clock()
    limiter = WriteLimiter(10.0, 2, clock)
    assert [limiter.reserve(), limiter.reserve()] == [0.0, 0.0]
    clock.now = 0.1
    assert limiter.reserve() == 0.0


def test_an_urgent_write_never_waits_and_the_others_wait_for_it() -> None:
    clock = Clock()
    limiter = WriteLimiter(10.0, 1, clock)
    assert limiter.reserve() == 0.0
    with limiter.urgent():
        assert limiter.reserve() == 0.0  # the bucket is empty: a rollback passes anyway
    assert round(limiter.reserve(), 6) == 0.2  # and the next ordinary write pays for it
    assert round(limiter.waited, 6) == 0.2


def test_urgency_is_the_writing_threads_own() -> None:
    clock = Clock()
    limiter = WriteLimiter(1.0, 1, clock)
    limiter.reserve()
    other: list[float] = []
    with limiter.urgent():
        thread = threading.Thread(target=lambda: other.append(limiter.reserve()))
        thread.start()
        thread.join()
    assert other == [1.0]


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (5.0, 0)])
def test_a_limit_that_cannot_be_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="write limit"):
        WriteLimiter(rate, burst)

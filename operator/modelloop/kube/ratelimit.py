"""A client-side limit on the operator's writes, with a way past it for rollbacks.

A burst (every Model's spec edited at once, a tenth of a fleet breaching together)
would otherwise send the API server thousands of writes in a few seconds. The writes
share one token bucket (``rate`` per second, up to ``burst`` at once), as client-go's
QPS and burst do. A write made ``urgent`` — a rollback taking traffic off a bad
candidate — never waits for a token: it takes one ahead of time (the bucket may go
into debt), so ordinary writes wait a little longer instead.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class WriteLimiter:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"write limit: rate {rate} must be > 0 and burst {burst} >= 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.waited = 0.0  # seconds ordinary writes spent waiting, in all

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Writes of this thread inside the block never wait."""
        before = getattr(self._local, "urgent", False)
        self._local.urgent = True
        try:
            yield
        finally:
            self._local.urgent = before

    def reserve(self) -> float:
        """Take a token; the seconds to wait before writing (0 for urgent writes)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1
            if self._tokens >= 0 or getattr(self._local, "urgent", False):
                return 0.0
            wait = -self._tokens / self.rate
            self.waited += wait
            return wait

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)

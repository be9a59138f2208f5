"""Turns at a write the API server answers one at a time: creating a Service.

kube-apiserver allocates a new Service's ClusterIP under one lock, held across a request
to itself (the ``IPAddress`` object of the allocator Kubernetes uses since 1.33), so the
creations of Services are answered one after another, cluster-wide: about 60 ms each on
the 2-core bench machine, 15 a second whatever the clients do. Applying a fleet asks for
a Service per Model; with every worker waiting in that line, nothing else moved — other
Models' Ready, a spec edit, a rollback. A reconcile takes a turn before creating a
Service, and without one creates none in this pass: its Model is woken when its turn
comes. At most ``limit`` workers wait on the allocator; the line itself is no shorter.

Turns are given in the order they were asked for: the first ``limit`` keys in line
that find a turn free take it, and each key is woken when it comes within reach of one.
A woken Model that no longer needs its turn (its Service exists, it was deleted) leaves
the line when its pass ends (``passed``), so a turn never waits for a Model that will not
ask again.
"""

import itertools
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager


class Turns:
    def __init__(self, limit: int, wake: Callable[[Hashable], None]) -> None:
        if limit < 1:
            raise ValueError(f"turns: limit {limit} must be >= 1")
        self.limit = limit
        self._wake = wake
        self._held = 0
        self._waiting: dict[Hashable, None] = {}  # in the order they asked
        self._woken: set[Hashable] = set()  # waiting keys woken since they last asked
        self._asked: set[Hashable] = set()  # asked in their current pass
        self._lock = threading.Lock()

    @contextmanager
    def turn(self, key: Hashable) -> Iterator[bool]:
        """Whether ``key`` holds a turn for the block; when not, it waits in line and is
        woken when a turn is within its reach."""
        granted = self._take(key)
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._held -= 1
                    woken = self._reachable()
                self._wake_all(woken)

    def waiting(self) -> int:
        """How many keys wait in line (asked, not yet given a turn)."""
        with self._lock:
            return len(self._waiting)

    def passed(self, key: Hashable) -> None:
        """``key``'s pass ended: if it waited without asking again in it, it leaves the
        line, and the next one in reach is woken."""
        with self._lock:
            asked = key in self._asked
            self._asked.discard(key)
            if asked or key not in self._waiting:
                return
            del self._waiting[key]
            self._woken.discard(key)
            woken = self._reachable()
        self._wake_all(woken)

    def _take(self, key: Hashable) -> bool:
        with self._lock:
            self._asked.add(key)
            self._woken.discard(key)
            free = self.limit - self._held
            if key in self._waiting:  # its place in line is within the free turns
                reached = key in itertools.islice(self._waiting, max(free, 0))
            else:  # it would join the line's end
                reached = len(self._waiting) < free
            if reached:
                self._waiting.pop(key, None)
                self._held += 1
                return True
            self._waiting.setdefault(key, None)
            return False

    def _reachable(self) -> list[Hashable]:
        """The waiting keys a free turn is within reach of, not yet woken (under the
        lock); they count as woken from here."""
        free = self.limit - self._held
        woken = [k for k in itertools.islice(self._waiting, max(free, 0)) if k not in self._woken]
        self._woken.update(woken)
        return woken

    def _wake_all(self, keys: list[Hashable]) -> None:
        for key in keys:
            self._wake(key)

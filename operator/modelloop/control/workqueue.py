"""A work queue of object keys, in the manner of client-go's workqueue.

Watch events only say "look at this Model again"; a key waiting in the queue
absorbs any number of further events, a key is never processed by two workers
at once, and a failed key comes back after an exponential backoff. One queue
and a few workers serve every Model, instead of an asyncio task per object.

Two lanes: an *urgent* key (a change someone waits on: a spec edit, a verdict that
turned, a canary's analysis) is taken first. The rest — the status churn of the
operator's children, data arriving, the resync — waits behind them, yet keeps one turn
in URGENT_RUN + 1 while it holds keys, so it never starves. In a burst the workers are
busy for seconds, each reconcile waiting on a loaded API server; in one line, a spec
edit queued behind every Deployment's rollout status of the fleet (controller-runtime's
priority queue likewise puts its initial list and resyncs last).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Any, NamedTuple, Protocol

from ..kube.rest import KubeError

log = logging.getLogger(__name__)


class Timing(Protocol):
    """Where a queue tells how long its keys waited (in their lane) and its reconciles
    took (seconds)."""

    def waited(self, seconds: float, urgent: bool) -> None: ...

    def worked(self, seconds: float) -> None: ...


URGENT, NORMAL = 0, 1  # lanes
URGENT_RUN = 3  # urgent keys taken in a row at most while normal ones wait


class _Asked(NamedTuple):
    """When a key was first asked for in each lane since it was last taken (None: not in
    that lane). Each ask's wait is told in its own lane: counted from the first ask, a
    key asked for by a normal change and then an urgent one would put the normal wait in
    the urgent lane (a restarted operator's listed fleet, some of whose Models its
    evaluation then asks for urgently)."""

    normal_at: float | None
    urgent_at: float | None

    @property
    def lane(self) -> int:
        return NORMAL if self.urgent_at is None else URGENT


class WorkQueue:
    def __init__(
        self,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``timing``: told, for each key taken, how long since it was first added (the
        change that asked for it) in each lane it was asked in, and how long its
        reconcile took."""
        # A key's entry in a lane is stale when _queued does not name that lane for it
        # (it moved to the urgent lane): skipped when reached.
        self._lanes: tuple[deque[Hashable], deque[Hashable]] = (deque(), deque())
        self._queued: dict[Hashable, int] = {}  # key waiting to be taken: its lane
        self._dirty: dict[Hashable, _Asked] = {}  # key that needs a pass
        self._processing: dict[Hashable, int] = {}  # key being reconciled: its lane
        self._urgent_run = 0
        self._waiting = asyncio.Event()
        self._failures: dict[Hashable, int] = {}
        self._base_delay = base_delay
        self._max_delay = max_delay
        self.timing, self.clock = timing, clock  # read by the workers (work)

    def add(self, key: Hashable, urgent: bool = False) -> None:
        """Ask for a pass of ``key``; an urgent ask moves a waiting key to the urgent lane."""
        lane = URGENT if urgent else NORMAL
        asked = self._dirty.get(key)
        if asked is not None and asked.lane <= lane:
            return
        now = self.clock()
        if asked is not None:  # asked for by a normal change, now by an urgent one
            self._dirty[key] = asked._replace(urgent_at=now)
        else:
            self._dirty[key] = _Asked(None, now) if urgent else _Asked(now, None)
        if key not in self._processing:
            self._put(key, lane)

    def _put(self, key: Hashable, lane: int) -> None:
        self._queued[key] = lane
        self._lanes[lane].append(key)
        self._waiting.set()

    def retry_after(self, key: Hashable, delay: float) -> None:
        """A failed pass again after ``delay``, in the lane it was taken from (call before
        ``done``)."""
        urgent = self._processing.get(key) == URGENT
        asyncio.get_running_loop().call_later(delay, self.add, key, urgent)

    async def get(self) -> Hashable:
        while True:
            while not self._queued:
                self._waiting.clear()
                await self._waiting.wait()
            lane = self._next_lane()
            key = self._lanes[lane].popleft()
            if self._queued.get(key) == lane:
                break
        del self._queued[key]
        self._processing[key] = lane
        asked = self._dirty.pop(key, None)
        if self.timing is not None and asked is not None:
            now = self.clock()
            for at, urgent in ((asked.normal_at, False), (asked.urgent_at, True)):
                if at is not None:
                    self.timing.waited(now - at, urgent)
        return key

    def _next_lane(self) -> int:
        urgent, normal = self._lanes
        if urgent and (not normal or self._urgent_run < URGENT_RUN):
            self._urgent_run += 1
            return URGENT
        self._urgent_run = 0
        return NORMAL if normal else URGENT

    def done(self, key: Hashable) -> None:
        """Finish processing; a key that changed meanwhile goes back in the queue."""
        self._processing.pop(key, None)
        asked = self._dirty.get(key)
        if asked is not None:
            self._put(key, asked.lane)

    def retry_delay(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self._base_delay * 2**failures, self._max_delay))

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._queued)


def call_on_loop(loop: asyncio.AbstractEventLoop, call: Callable[..., object], *args: Any) -> None:
    """``call(*args)`` on the event loop, from another thread. Once the loop has closed, the
    operator is stopping: nothing is called, and nothing is lost, as the next leader's
    first pass takes every Model."""
    try:
        loop.call_soon_threadsafe(call, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise


def waker(loop: asyncio.AbstractEventLoop, queue: WorkQueue) -> Callable[[Hashable, bool], None]:
    """``queue.add`` for another thread (the evaluation's, waking a Model's reconcile
    after its verdicts were written), by ``call_on_loop``. Without it, each evaluation
    concluding during a shutdown logged a traceback as a failed evaluation, though its
    verdicts had been written."""

    def wake(key: Hashable, urgent: bool) -> None:
        call_on_loop(loop, queue.add, key, urgent)

    return wake


async def work(
    queue: WorkQueue, reconcile: Callable[[Hashable], None], threads: Executor | None = None
) -> None:
    """One worker: run the (blocking) reconcile for each key on ``threads`` (the event
    loop's default executor, a few threads, when None), forever."""
    loop = asyncio.get_running_loop()
    while True:
        key = await queue.get()
        started = queue.clock()
        try:
            await loop.run_in_executor(threads, reconcile, key)
        except Exception as error:
            delay = queue.retry_delay(key)
            if isinstance(error, KubeError) and error.conflict:
                # Optimistic concurrency: another writer came first; read the world again.
                log.info("%s changed while reconciling; again in %.1fs", key, delay)
            else:
                log.exception("reconciling %s failed; retrying in %.1fs", key, delay)
            queue.retry_after(key, delay)
        else:
            queue.forget(key)
        finally:
            if queue.timing is not None:
                queue.timing.worked(queue.clock() - started)
            queue.done(key)

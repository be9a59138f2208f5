"""A work queue of object keys, in the manner of client-go's workqueue.

Watch events only say "look at this Model again"; a key waiting in the queue
absorbs any number of further events, a key is never processed by two workers
at once, and a failed key comes back after an exponential backoff. One queue
and a few workers serve every Model, instead of an asyncio task per object.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Protocol

from ..kube.rest import KubeError

log = logging.getLogger(__name__)


class Timing(Protocol):
    """Where a queue tells how long its keys waited and its reconciles took (seconds)."""

    def waited(self, seconds: float) -> None: ...

    def worked(self, seconds: float) -> None: ...


class WorkQueue:
    def __init__(
        self,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``timing``: told, for each key taken, how long since it was first added (the
        change that asked for it) and how long its reconcile took."""
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._dirty: dict[Hashable, float] = {}  # key: when it was first added since taken
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._base_delay = base_delay
        self._max_delay = max_delay
        self.timing, self.clock = timing, clock

    def add(self, key: Hashable) -> None:
        if key in self._dirty:
            return
        self._dirty[key] = self.clock()
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> Hashable:
        key = await self._queue.get()
        self._processing.add(key)
        added = self._dirty.pop(key, self.clock())
        if self.timing is not None:
            self.timing.waited(self.clock() - added)
        return key

    def done(self, key: Hashable) -> None:
        """Finish processing; a key that changed meanwhile goes back in the queue."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)

    def retry_delay(self, key: Hashable) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self._base_delay * 2**failures, self._max_delay))

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return self._queue.qsize()


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
            queue.add_after(key, delay)
        else:
            queue.forget(key)
        finally:
            if queue.timing is not None:
                queue.timing.worked(queue.clock() - started)
            queue.done(key)

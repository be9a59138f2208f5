import asyncio
import logging
from collections.abc import Hashable

import pytest

from modelloop.control.workqueue import WorkQueue, waker, work
from modelloop.kube.rest import KubeError


def test_a_waiting_key_absorbs_repeated_adds() -> None:
    async def scenario() -> list[Hashable]:
        queue = WorkQueue()
        for _ in range(3):
            queue.add("a")
        queue.add("b")
        return [await queue.get(), await queue.get(), len(queue)]

    assert asyncio.run(scenario()) == ["a", "b", 0]


def test_a_key_added_while_processing_comes_back_once_after_done() -> None:
    async def scenario() -> tuple[int, Hashable]:
        queue = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a")
        queue.add("a")
        waiting_during = len(queue)
        queue.done(key)
        return waiting_during, await asyncio.wait_for(queue.get(), 1)

    assert asyncio.run(scenario()) == (0, "a")


def test_failures_back_off_exponentially_and_reset() -> None:
    queue = WorkQueue(base_delay=1, max_delay=5)
    assert [queue.retry_delay("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    queue.forget("k")
    assert queue.retry_delay("k") == 1


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (RuntimeError("transient"), "reconciling m failed; retrying in"),
        (KubeError(409, "Conflict", "the object has been modified"), "m changed while reconciling"),
    ],
)
def test_worker_retries_a_failing_key_until_it_succeeds(
    error: Exception, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[Hashable] = []

    def reconcile(key: Hashable) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise error

    async def scenario() -> None:
        queue = WorkQueue(base_delay=0.01)
        worker = asyncio.create_task(work(queue, reconcile))
        queue.add("m")
        for _ in range(200):
            if len(attempts) >= 3:
                break
            await asyncio.sleep(0.01)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert attempts == ["m", "m", "m"]
    assert [r.getMessage()[: len(logged)] for r in caplog.records] == [logged, logged]
    # A conflict is routine (optimistic concurrency): no traceback in the log.
    assert all(r.exc_info is None for r in caplog.records) == isinstance(error, KubeError)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timings:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.lanes: list[bool] = []
        self.works: list[float] = []

    def waited(self, seconds: float, urgent: bool) -> None:
        self.waits.append(seconds)
        self.lanes.append(urgent)

    def worked(self, seconds: float) -> None:
        self.works.append(seconds)


def test_a_key_waits_from_its_first_add_and_an_add_while_processing_counts_from_then() -> None:
    clock, timings = Clock(), Timings()

    async def scenario() -> None:
        queue = WorkQueue(timing=timings, clock=clock)
        queue.add("a")
        clock.now += 2
        queue.add("a")  # absorbed: the wait runs from the first add
        clock.now += 1
        key = await queue.get()
        clock.now += 5
        queue.add("a")  # while processing: a new wait, from now
        clock.now += 4
        queue.done(key)
        await queue.get()

    asyncio.run(scenario())
    assert timings.waits == [3.0, 4.0]


def test_the_worker_times_each_reconcile_failed_or_not() -> None:
    clock, timings = Clock(), Timings()
    done: list[Hashable] = []

    def reconcile(key: Hashable) -> None:
        clock.now += 0.25
        done.append(key)
        if key == "bad":
            raise RuntimeError("transient")

    async def scenario() -> None:
        queue = WorkQueue(base_delay=60, timing=timings, clock=clock)
        worker = asyncio.create_task(work(queue, reconcile))
        queue.add("good")
        queue.add("bad")
        for _ in range(200):
            if len(timings.works) >= 2:
                break
            await asyncio.sleep(0.01)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(scenario())
    assert done == ["good", "bad"]
    assert timings.works == [0.25, 0.25]


def test_an_urgent_key_is_taken_before_the_keys_waiting_in_the_normal_lane() -> None:
    async def scenario() -> list[Hashable]:
        queue = WorkQueue()
        for key in ("a", "b", "c"):
            queue.add(key)
        queue.add("edited", urgent=True)
        return [await queue.get() for _ in range(4)]

    assert asyncio.run(scenario()) == ["edited", "a", "b", "c"]


def test_a_waiting_key_asked_urgently_moves_to_the_front_and_each_ask_waits_in_its_lane() -> None:
    clock, timings = Clock(), Timings()

    async def scenario() -> tuple[list[Hashable], int]:
        queue = WorkQueue(timing=timings, clock=clock)
        queue.add("a")
        queue.add("b")
        clock.now += 3
        queue.add("b", urgent=True)
        queue.add("b")  # a normal ask of an urgent key changes nothing
        taken = [await queue.get(), await queue.get()]
        return taken, len(queue)

    assert asyncio.run(scenario()) == (["b", "a"], 0)
    # b: its normal ask waited 3 s, its urgent ask none; a: 3 s in the normal lane.
    assert timings.waits == [3.0, 0.0, 3.0]
    assert timings.lanes == [False, True, False]


def test_a_key_asked_urgently_first_waits_in_the_urgent_lane_only() -> None:
    clock, timings = Clock(), Timings()

    async def scenario() -> None:
        queue = WorkQueue(timing=timings, clock=clock)
        queue.add("a", urgent=True)
        clock.now += 2
        queue.add("a", urgent=True)  # absorbed: the urgent wait runs from the first
        queue.add("a")  # a normal ask of an urgent key adds no wait of its own
        clock.now += 1
        await queue.get()

    asyncio.run(scenario())
    assert (timings.waits, timings.lanes) == ([3.0], [True])


def test_an_urgent_ask_while_processing_brings_the_key_back_in_the_urgent_lane() -> None:
    async def scenario() -> list[Hashable]:
        queue = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("b")
        queue.add("a")
        queue.add("a", urgent=True)
        assert len(queue) == 1  # b; a comes back when its pass is done
        queue.done(key)
        return [await queue.get(), await queue.get(), len(queue)]

    assert asyncio.run(scenario()) == ["a", "b", 0]


def test_the_normal_lane_keeps_one_turn_in_four_while_urgent_keys_keep_coming() -> None:
    async def scenario() -> list[Hashable]:
        queue = WorkQueue()
        for key in ("n1", "n2"):
            queue.add(key)
        for key in ("u1", "u2", "u3", "u4", "u5"):
            queue.add(key, urgent=True)
        return [await queue.get() for _ in range(7)]

    assert asyncio.run(scenario()) == ["u1", "u2", "u3", "n1", "u4", "u5", "n2"]


def test_a_failed_pass_comes_back_in_the_lane_it_was_taken_from() -> None:
    async def scenario() -> list[Hashable]:
        queue = WorkQueue()
        queue.add("rollback", urgent=True)
        queue.add("status")
        key = await queue.get()
        queue.retry_after(key, 0.01)
        queue.done(key)
        await asyncio.sleep(0.05)
        return [await queue.get(), await queue.get()]

    assert asyncio.run(scenario()) == ["rollback", "status"]


def test_a_waker_adds_from_another_thread_and_does_nothing_once_the_loop_closed() -> None:
    queue = WorkQueue()

    async def woken() -> Hashable:
        wake = waker(asyncio.get_running_loop(), queue)
        await asyncio.to_thread(wake, "a", True)
        return await queue.get()

    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(woken()) == "a"
    queue.done("a")
    late = waker(loop, queue)
    loop.close()  # the operator stopped while an evaluation was concluding
    late("b", True)  # no "Event loop is closed"
    assert len(queue) == 0


def test_a_normal_and_an_urgent_ask_at_the_same_instant_each_count_their_wait() -> None:
    clock, timings = Clock(), Timings()

    async def scenario() -> None:
        queue = WorkQueue(timing=timings, clock=clock)
        queue.add("a")
        queue.add("a", urgent=True)
        clock.now += 2
        await queue.get()

    asyncio.run(scenario())
    assert (timings.waits, timings.lanes) == ([2.0, 2.0], [False, True])

"""Bulkhead: limits, the fair queue, timeouts, cancellation, threads and tasks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from buttress.errors import BulkheadFullError, ConfigurationError
from buttress.events import BulkheadRejected, CallRejected, Event
from buttress.resilience import Bulkhead, Deadline


def test_calls_run_and_slots_are_given_back() -> None:
    bulkhead = Bulkhead(2, name="b")

    @bulkhead
    def inside() -> int:
        return bulkhead.active

    assert inside() == 1 and bulkhead.call(inside) == 2  # call() around a decorated function: two slots
    assert bulkhead.call(lambda: bulkhead.active) == 1
    assert bulkhead.active == 0 and bulkhead.available == 2 and bulkhead.queued == 0

    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        bulkhead.call(boom)
    assert bulkhead.available == 2
    assert repr(bulkhead) == "Bulkhead(max_concurrent=2, max_queued=0, queue_timeout=None, name='b')"
    assert (bulkhead.max_concurrent, bulkhead.max_queued) == (2, 0)


def test_full_bulkhead_refuses_with_its_name_and_an_event() -> None:
    events: list[Event] = []
    bulkhead = Bulkhead(1, 0, name="reports")
    bulkhead.events.subscribe(events.append)
    assert bulkhead.try_enter()
    assert not bulkhead.try_enter()
    with pytest.raises(BulkheadFullError, match="bulkhead 'reports' is full: 1 calls running") as info:
        bulkhead.call(lambda: None)
    assert info.value.policy == "reports" and info.value.retry_after is None
    bulkhead.leave()
    assert events == [BulkheadRejected("reports", "full", None, 1, 0)]
    assert isinstance(events[0], CallRejected)
    anonymous = Bulkhead(1)
    anonymous.enter()
    with pytest.raises(BulkheadFullError, match=r"^bulkhead is full"):
        anonymous.enter()


def test_validation_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        Bulkhead(0, -1, queue_timeout=-1, name="x")
    assert len(info.value.problems) == 3
    assert "max_concurrent must be an integer >= 1 (got 0)" in str(info.value)
    from datetime import timedelta

    assert Bulkhead(1, queue_timeout=timedelta(milliseconds=5)).queue_timeout == 0.005


def test_async_queue_is_fifo_and_hands_slots_over() -> None:
    bulkhead = Bulkhead(1, 10)
    order: list[int] = []

    async def job(n: int, gate: asyncio.Event) -> int:
        order.append(n)
        await gate.wait()
        return n

    async def main() -> list[int]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(bulkhead.acall(job, n, gate)) for n in range(5)]
        await asyncio.sleep(0)
        assert bulkhead.active == 1 and bulkhead.queued == 4
        gate.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert order == [0, 1, 2, 3, 4] and bulkhead.available == 1


def test_sync_queue_is_fifo_across_threads() -> None:
    bulkhead = Bulkhead(1, 10)
    order: list[int] = []
    bulkhead.enter()
    threads = []
    for n in range(4):
        thread = threading.Thread(target=lambda n=n: bulkhead.call(order.append, n))
        thread.start()
        while bulkhead.queued < n + 1:  # queue them in a known order
            time.sleep(0.001)
        threads.append(thread)
    bulkhead.leave()
    for thread in threads:
        thread.join(2)
    assert order == [0, 1, 2, 3] and bulkhead.available == 1


def test_queue_timeouts_sync_and_async() -> None:
    events: list[Event] = []
    bulkhead = Bulkhead(1, 5, queue_timeout=0.01, name="q")
    bulkhead.events.subscribe(events.append)
    bulkhead.enter()
    started = time.perf_counter()
    with pytest.raises(BulkheadFullError, match="within the queue timeout"):
        bulkhead.enter()
    assert time.perf_counter() - started < 1.0

    async def main() -> None:
        with pytest.raises(BulkheadFullError, match="within the queue timeout"):
            await bulkhead.aenter()

    asyncio.run(main())
    assert bulkhead.queued == 0 and bulkhead.active == 1
    assert [e.reason for e in events if isinstance(e, BulkheadRejected)] == ["queue_timeout"] * 2
    bulkhead.leave()


def test_the_deadline_bounds_the_queue_wait() -> None:
    bulkhead = Bulkhead(1, 5, queue_timeout=10.0)
    bulkhead.enter()
    with Deadline(0.01), pytest.raises(BulkheadFullError, match="within the deadline"):
        bulkhead.enter()
    unbounded = Bulkhead(1, 5)
    unbounded.enter()

    async def main() -> None:
        async with Deadline(0.0):
            with pytest.raises(BulkheadFullError, match="within the deadline"):
                await unbounded.aenter()

    asyncio.run(main())
    assert bulkhead.queued == 0 and unbounded.queued == 0


def test_cancelled_waiters_leave_the_queue() -> None:
    bulkhead = Bulkhead(1, 10)

    async def main() -> None:
        gate = asyncio.Event()
        holder = asyncio.create_task(bulkhead.acall(gate.wait))
        await asyncio.sleep(0)
        waiters = [asyncio.create_task(bulkhead.acall(asyncio.sleep, 0)) for _ in range(3)]
        await asyncio.sleep(0)
        assert bulkhead.queued == 3
        waiters[1].cancel()
        await asyncio.sleep(0)
        assert bulkhead.queued == 2
        gate.set()
        await holder
        await asyncio.gather(waiters[0], waiters[2])
        assert waiters[1].cancelled()

    asyncio.run(main())
    assert bulkhead.queued == 0 and bulkhead.available == 1


def test_a_slot_granted_to_a_cancelled_waiter_is_passed_on() -> None:
    bulkhead = Bulkhead(1, 10)

    async def main() -> list[str]:
        bulkhead.enter()
        first = asyncio.create_task(bulkhead.aenter())
        second = asyncio.create_task(bulkhead.acall(asyncio.sleep, 0, "second ran"))
        await asyncio.sleep(0)
        bulkhead.leave()  # grants the slot to ``first`` ...
        first.cancel()  # ... which is cancelled before it could wake up
        result = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        return [result]

    assert asyncio.run(main()) == ["second ran"]
    assert bulkhead.available == 1 and bulkhead.queued == 0


def test_a_sync_waiter_granted_as_its_wait_ends_keeps_the_slot() -> None:
    bulkhead = Bulkhead(1, 1, queue_timeout=0.0)
    bulkhead.enter()
    # leave() from another thread races the zero timeout; either way nothing leaks
    threading.Timer(0.0, bulkhead.leave).start()
    try:
        bulkhead.enter()
    except BulkheadFullError:
        time.sleep(0.02)
    else:
        bulkhead.leave()
    assert bulkhead.queued == 0
    for _ in range(100):
        if bulkhead.available == 1:
            break
        time.sleep(0.002)
    assert bulkhead.available == 1


def test_sync_wait_interrupted_leaves_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    bulkhead = Bulkhead(1, 2)
    bulkhead.enter()
    real_lock = threading.Lock

    class Interrupting:
        def __init__(self) -> None:
            self._lock = real_lock()

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            if timeout == -1 and self._lock.locked():
                raise KeyboardInterrupt
            return self._lock.acquire(blocking, timeout)

        def release(self) -> None:
            self._lock.release()

    monkeypatch.setattr(threading, "Lock", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        bulkhead.enter()
    monkeypatch.undo()
    assert bulkhead.queued == 0
    bulkhead.leave()
    assert bulkhead.available == 1


def test_guard_sync_and_async() -> None:
    bulkhead = Bulkhead(1)
    with bulkhead.guard():
        assert bulkhead.available == 0
    assert bulkhead.available == 1

    async def main() -> int:
        async with bulkhead.guard():
            return bulkhead.available

    assert asyncio.run(main()) == 0 and bulkhead.available == 1


def test_never_exceeds_its_limit_under_8_threads() -> None:
    bulkhead = Bulkhead(3, 100)
    lock = threading.Lock()
    running = [0, 0]

    @bulkhead
    def work() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.0001)
        with lock:
            running[0] -= 1

    def hammer() -> None:
        for _ in range(200):
            work()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert running[1] <= 3 and running[1] >= 2
    assert bulkhead.available == 3 and bulkhead.queued == 0


def test_never_exceeds_its_limit_under_1000_tasks() -> None:
    bulkhead = Bulkhead(5, 1000)
    running = [0, 0]

    async def work(n: int) -> int:
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(0)
        running[0] -= 1
        return n

    async def main() -> list[int]:
        return list(await asyncio.gather(*(bulkhead.acall(work, n) for n in range(1000))))

    assert asyncio.run(main()) == list(range(1000))
    assert running[1] == 5 and bulkhead.available == 5 and bulkhead.queued == 0


def test_threads_and_two_event_loops_share_one_bulkhead() -> None:
    bulkhead = Bulkhead(2, 1000)
    lock = threading.Lock()
    running = [0, 0]

    async def awork() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        await asyncio.sleep(0.0005)
        with lock:
            running[0] -= 1

    def loop_thread() -> None:
        async def main() -> None:
            await asyncio.gather(*(bulkhead.acall(awork) for _ in range(50)))

        asyncio.run(main())

    def sync_thread() -> None:
        for _ in range(50):
            with bulkhead.guard():
                with lock:
                    running[0] += 1
                    running[1] = max(running[1], running[0])
                time.sleep(0.0002)
                with lock:
                    running[0] -= 1

    threads = [threading.Thread(target=t) for t in (loop_thread, loop_thread, sync_thread, sync_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert running[1] <= 2
    assert bulkhead.available == 2 and bulkhead.queued == 0


def test_the_slow_path_enters_when_a_slot_frees_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    bulkhead = Bulkhead(1, 1)
    assert bulkhead.try_enter() and not bulkhead.try_enter()  # no slot, nobody queued
    bulkhead.leave()
    # the uncontended check lost a race: the locked slow path still finds the free slot
    monkeypatch.setattr(type(bulkhead._slots), "try_enter", lambda self: False)
    bulkhead.enter()
    bulkhead.leave()

    async def main() -> None:
        await bulkhead.aenter()
        bulkhead.leave()

    asyncio.run(main())
    assert bulkhead.available == 1


def test_a_slot_freed_in_the_race_window_reaches_the_oldest_waiter() -> None:
    bulkhead = Bulkhead(1, 5, queue_timeout=5.0)

    async def main() -> list[str]:
        bulkhead.enter()
        first = asyncio.create_task(bulkhead.acall(asyncio.sleep, 0, "first"))
        await asyncio.sleep(0)
        # the holder leaves, appends its token and is preempted before it dispatches: the next
        # caller to queue dispatches the slot, to the oldest waiter
        bulkhead._slots.tokens.append(None)
        second = asyncio.create_task(bulkhead.acall(asyncio.sleep, 0, "second"))
        return [await first, await second]

    assert asyncio.run(main()) == ["first", "second"]
    assert bulkhead.available == 1 and bulkhead.queued == 0


def test_a_deadline_longer_than_the_queue_timeout_leaves_the_queue_timeout() -> None:
    bulkhead = Bulkhead(1, 1, queue_timeout=0.01)
    bulkhead.enter()
    with Deadline(60.0), pytest.raises(BulkheadFullError, match="queue timeout"):
        bulkhead.enter()
    bulkhead.leave()

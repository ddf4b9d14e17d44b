"""Deadlines in a context variable; Timeout shrinking to them; sync timeouts; retries that stop."""

from __future__ import annotations

import asyncio
import builtins
import threading
import time
from datetime import timedelta

import pytest

import buttress
from buttress.errors import ConfigurationError
from buttress.events import Event, RetryExhausted, TimeoutExpired
from buttress.resilience import (
    Constant,
    Deadline,
    Retry,
    RetryBudget,
    Timeout,
    check_deadline,
    current_deadline,
    shrink,
    time_left,
)
from buttress.testing import FakeClock


def test_deadline_counts_down_on_its_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(timedelta(seconds=2), clock=clock)
    assert (deadline.remaining(), deadline.expired) == (2.0, False)
    deadline.check()
    clock.advance(2.5)
    assert deadline.remaining() == 0.0 and deadline.expired
    with pytest.raises(buttress.TimeoutError, match="passed its deadline of 2s") as info:
        deadline.check()
    assert info.value.policy is None and info.value.timeout == 2.0
    assert repr(deadline) == "Deadline(remaining=0)"


def test_deadline_validation_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError, match="seconds must be >= 0"):
        Deadline(-1)
    with pytest.raises(ConfigurationError, match="NaN"):
        Deadline(float("nan"))
    assert Deadline(float("inf")).remaining() == float("inf")


def test_entering_makes_it_current_and_nesting_only_tightens() -> None:
    clock = FakeClock()
    assert current_deadline() is None and time_left() is None
    check_deadline()  # no deadline: nothing to check
    outer = Deadline(1.0, clock=clock)
    with outer as entered:
        assert entered is outer and current_deadline() is outer
        with Deadline(5.0, clock=clock):
            assert current_deadline() is outer  # the later one does not loosen the earlier
            assert time_left() == 1.0
        inner = Deadline(0.25, clock=clock)
        with inner:
            assert current_deadline() is inner and shrink(2.0) == 0.25
        assert current_deadline() is outer
    assert current_deadline() is None


def test_shrink_takes_the_smaller_of_own_timeout_and_time_left() -> None:
    clock = FakeClock()
    assert shrink(3.0) == 3.0 and shrink(None) is None
    with Deadline(1.0, clock=clock):
        clock.advance(0.5)
        assert shrink(3.0) == 0.5
        assert shrink(0.1) == 0.1
        assert shrink(None) == 0.5
        clock.advance(1)
        with pytest.raises(buttress.TimeoutError):
            check_deadline()


def test_one_deadline_entered_by_many_tasks_at_once() -> None:
    deadline = Deadline(10.0)

    async def worker(seen: list[bool]) -> None:
        async with deadline:
            await asyncio.sleep(0)
            seen.append(current_deadline() is deadline)
        seen.append(current_deadline() is None)

    async def main() -> list[bool]:
        seen: list[bool] = []
        await asyncio.gather(*(worker(seen) for _ in range(5)))
        return seen

    assert asyncio.run(main()) == [True] * 5 + [True] * 5


# -- Timeout and the deadline --------------------------------------------------------------


def test_timeout_shrinks_to_the_deadline_and_publishes_its_own() -> None:
    seen: list[float | None] = []

    async def inner() -> None:
        seen.append(time_left())
        await asyncio.Event().wait()

    events: list[Event] = []
    generous = Timeout(10.0, name="inner")
    generous.events.subscribe(events.append)

    async def main() -> None:
        async with Deadline(0.02):
            await generous.acall(inner)

    started = time.perf_counter()
    with pytest.raises(buttress.TimeoutError) as info:
        asyncio.run(main())
    assert time.perf_counter() - started < 1.0
    assert info.value.policy == "inner" and info.value.timeout <= 0.02
    assert seen[0] is not None and seen[0] <= 0.02
    assert events and isinstance(events[0], TimeoutExpired)


def test_outer_timeout_is_the_deadline_of_the_calls_inside() -> None:
    async def inner() -> float | None:
        return time_left()

    outer = Timeout(0.5)
    inner_timeout = Timeout(0.1)

    async def nested() -> float | None:
        return await inner_timeout.acall(inner)

    left_outer = asyncio.run(outer.acall(inner))
    left_nested = asyncio.run(outer.acall(nested))
    assert left_outer is not None and 0.4 < left_outer <= 0.5
    assert left_nested is not None and 0.05 < left_nested <= 0.1
    assert current_deadline() is None


def test_timeout_with_no_time_left_fails_without_running() -> None:
    clock = FakeClock()
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    events: list[Event] = []
    timeout = Timeout(1.0, name="t")
    timeout.events.subscribe(events.append)

    async def main() -> None:
        with Deadline(0.0, clock=clock):
            await timeout.acall(work)

    with pytest.raises(buttress.TimeoutError, match="'t' timed out after 0s"):
        asyncio.run(main())
    assert ran == [] and events == [TimeoutExpired("t", 0.0)]


def test_a_shrunk_timeout_fires_before_earlier_queued_deadlines() -> None:
    # One policy, two calls: the first queues a 1 s deadline, the second is shrunk to 20 ms by a
    # Deadline and must fire on time although its deadline is out of order in the queue.
    timeout = Timeout(1.0)

    async def main() -> tuple[str, float]:
        slow_done = asyncio.Event()

        async def slow() -> str:
            await slow_done.wait()
            return "slow"

        async def hung() -> None:
            await asyncio.Event().wait()

        first = asyncio.create_task(timeout.acall(slow))
        await asyncio.sleep(0)

        async def second() -> None:
            async with Deadline(0.02):
                await timeout.acall(hung)

        started = time.perf_counter()
        with pytest.raises(buttress.TimeoutError):
            await second()
        took = time.perf_counter() - started
        # an out-of-order call that finishes in time cancels its own timer
        async with Deadline(0.5):
            assert await timeout.acall(asyncio.sleep, 0, "quick") == "quick"
        slow_done.set()
        return await first, took

    result, took = asyncio.run(main())
    assert result == "slow" and took < 0.5


# -- sync timeouts ---------------------------------------------------------------------------


def test_cooperative_timeout_stops_code_that_checks() -> None:
    clock = FakeClock()
    events: list[Event] = []
    timeout = Timeout(1.0, name="batch", sync="cooperative", clock=clock)
    timeout.events.subscribe(events.append)
    done: list[int] = []

    @timeout
    def batch(rows: int) -> int:
        for row in range(rows):
            check_deadline()
            clock.advance(0.3)
            done.append(row)
        return len(done)

    with pytest.raises(buttress.TimeoutError, match="'batch' passed its deadline of 1s") as info:
        batch(10)
    assert done == [0, 1, 2, 3] and info.value.policy == "batch" and info.value.timeout == 1.0
    assert events == [TimeoutExpired("batch", 1.0)]
    assert current_deadline() is None


def test_cooperative_timeout_returns_a_late_result_and_honours_outer_deadlines() -> None:
    clock = FakeClock()
    timeout = Timeout(1.0, sync="cooperative", clock=clock)

    def late() -> str:
        clock.advance(5)
        return "done anyway"

    def left() -> float | None:
        return time_left()

    assert timeout.call(late) == "done anyway"
    with Deadline(0.25, clock=clock):
        assert timeout.call(left) == 0.25
    with Deadline(0.0, clock=clock), pytest.raises(buttress.TimeoutError, match="after 0s"):
        timeout.call(left)
    other = Timeout(1.0, sync="cooperative", clock=clock)

    def foreign() -> None:
        raise buttress.TimeoutError("somebody else's", policy="x", timeout=3.0)

    with pytest.raises(buttress.TimeoutError, match="somebody else's"):
        other.call(foreign)


def test_thread_timeout_abandons_the_worker_and_returns_on_time() -> None:
    release = threading.Event()
    stopped: list[str] = []

    def blocking() -> None:
        release.wait(2.0)
        try:
            check_deadline()  # the abandoned worker still sees its deadline
        except buttress.TimeoutError:
            stopped.append("stopped cooperatively")

    events: list[Event] = []
    timeout = Timeout(0.02, name="legacy", sync="thread")
    timeout.events.subscribe(events.append)
    started = time.perf_counter()
    with pytest.raises(buttress.TimeoutError, match=r"'legacy' timed out after 0\.02s"):
        timeout.call(blocking)
    assert time.perf_counter() - started < 1.0
    assert events == [TimeoutExpired("legacy", 0.02)]
    release.set()
    for _ in range(200):
        if stopped:
            break
        time.sleep(0.005)
    assert stopped == ["stopped cooperatively"]


def test_thread_timeout_passes_results_errors_and_context() -> None:
    timeout = Timeout(1.0, sync="thread")

    def where() -> tuple[str, float | None]:
        return threading.current_thread().name, time_left()

    name, left = timeout(where)()
    assert name.startswith("buttress-timeout-") and left is not None and 0 < left <= 1.0

    def boom() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        timeout.call(boom)
    with Deadline(0.0), pytest.raises(buttress.TimeoutError, match="after 0s"):
        timeout.call(where)


def test_sync_mode_validation_repr_and_async_still_works() -> None:
    with pytest.raises(ConfigurationError) as info:
        Timeout(0, sync="process")  # type: ignore[arg-type]
    assert len(info.value.problems) == 2
    timeout = Timeout(2, name="x", sync="thread")
    assert repr(timeout) == "Timeout(2, name='x', sync='thread')"
    assert not timeout._requires_async()

    async def quick() -> int:
        return 7

    assert asyncio.run(timeout.acall(quick)) == 7
    with pytest.raises(TypeError, match="sync='thread'"):
        Timeout(1).call(lambda: 1)


# -- Retry and the deadline --------------------------------------------------------------------


def test_retry_never_schedules_a_wait_past_the_deadline() -> None:
    clock = FakeClock()
    events: list[Event] = []
    budget = RetryBudget(ratio=0, min_per_second=1, ttl=10, clock=clock)
    retry = Retry("r", attempts=10, backoff=Constant(1), budget=budget, clock=clock)
    retry.events.subscribe(events.append)
    calls: list[float] = []

    def down() -> None:
        calls.append(clock.monotonic())
        raise ConnectionError("down")

    with Deadline(2.5, clock=clock), pytest.raises(ConnectionError):
        retry.call(down)
    assert calls == [0.0, 1.0, 2.0]  # a third wait would have ended at 3.0, past 2.5
    assert clock.sleeps == [1, 1]
    exhausted = [e for e in events if isinstance(e, RetryExhausted)]
    assert exhausted and exhausted[0].reason == "deadline" and exhausted[0].attempts == 3
    assert budget.balance == 8.0  # the refused retry did not spend from the budget


def test_async_retry_stops_at_the_deadline_and_a_zero_wait_may_still_go() -> None:
    clock = FakeClock()
    retry = Retry(attempts=4, backoff=Constant(0), clock=clock)
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("blip")
        return "ok"

    async def main() -> str:
        async with Deadline(1.0, clock=clock):
            return await retry.acall(flaky)

    assert asyncio.run(main()) == "ok" and len(calls) == 3

    async def expired() -> str:
        async with Deadline(0.0, clock=clock):
            return await retry.acall(flaky)

    calls.clear()
    with pytest.raises(ConnectionError):
        asyncio.run(expired())
    assert len(calls) == 1


def test_builtin_timeout_error_is_what_deadline_raises() -> None:
    with Deadline(0.0), pytest.raises(builtins.TimeoutError):
        check_deadline()

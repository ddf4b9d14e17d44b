"""RateLimiter: the four uses, refusals, events, fair waiting (threads and tasks), concurrency."""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from typing import Any

import pytest

from buttress.errors import ConfigurationError, RateLimitedError
from buttress.events import Event
from buttress.resilience.ratelimit import (
    Concurrency,
    Decision,
    FixedWindow,
    Limiter,
    LimitExceeded,
    MemoryLimiter,
    RateLimiter,
    Rule,
    TokenBucket,
)
from buttress.testing import FakeClock


class GatedClock(FakeClock):
    """A fake clock whose sleeps wait for the test to open a gate, so threads queue up first."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def sleep(self, seconds: float) -> None:
        assert self.gate.wait(5), "the test never opened the gate"
        super().sleep(seconds)


class YieldFirstClock(FakeClock):
    """A fake clock whose ``asleep`` lets other tasks run before time moves, as a real one does."""

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self.sleep(seconds)


class ForeignLimiter:
    """A limiter that is not a MemoryLimiter: the policy must use only the protocol."""

    def __init__(self, rule: Rule, clock: FakeClock) -> None:
        self.inner = MemoryLimiter(rule, clock=clock)
        self.rule = rule
        self.async_calls = 0

    def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
        return self.inner.try_acquire(key, cost)

    async def atry_acquire(self, key: str = "", cost: int = 1) -> Decision:
        self.async_calls += 1
        return self.inner.try_acquire(key, cost)

    def release(self, key: str = "", cost: int = 1) -> None:
        self.inner.release(key, cost)

    async def arelease(self, key: str = "", cost: int = 1) -> None:
        self.inner.release(key, cost)


def test_decorated_functions_keep_their_parameters_and_refuse_past_the_limit() -> None:
    clock = FakeClock()
    policy = RateLimiter(MemoryLimiter(FixedWindow(limit=4, window=1), clock=clock), clock=clock)
    default: list[int] = []

    @policy
    def put(key: str, value: int = 1, /, *rest: int, sink: list[int] = default, **meta: str) -> Any:
        return key, value, rest, sink, meta

    @policy
    async def aput(key: str, *, value: int = 1) -> tuple[str, int]:
        return key, value

    assert put("k") == ("k", 1, (), default, {})
    assert put("k", 2, 3, sink=[9], tag="x") == ("k", 2, (3,), [9], {"tag": "x"})
    assert put("k")[3] is default
    with pytest.raises(TypeError):
        put(key="k")  # type: ignore[call-arg]  # positional-only, as declared
    assert asyncio.run(aput("a", value=5)) == ("a", 5)
    assert [p.name for p in inspect.signature(put).parameters.values()] == [
        "key",
        "value",
        "rest",
        "sink",
        "meta",
    ]
    with pytest.raises(RateLimitedError):  # 4 admitted in this window; the 5th waits for none
        put("k")
    with pytest.raises(RateLimitedError):
        asyncio.run(aput("a"))
    clock.advance(1)
    assert put("k") == ("k", 1, (), default, {})


def test_decorator_call_and_acall_admit_then_refuse_with_retry_after() -> None:
    clock = FakeClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=2, burst=2), clock=clock), name="api", clock=clock)

    @policy
    def ping() -> str:
        return "pong"

    @policy
    async def aping() -> str:
        return "apong"

    def bare() -> str:
        return "bare"

    async def abare() -> str:
        return "abare"

    assert ping() == "pong"
    assert asyncio.run(aping()) == "apong"
    with pytest.raises(RateLimitedError) as info:
        policy.call(bare)
    assert info.value.policy == "api" and info.value.retry_after == pytest.approx(0.5)
    decision: Decision = info.value.decision
    assert not decision.allowed and decision.headers()["Retry-After"] == "1"
    with pytest.raises(RateLimitedError):
        asyncio.run(policy.acall(abare))
    clock.advance(0.5)
    assert policy.call(bare) == "bare"
    clock.advance(0.5)

    async def via_acall() -> str:
        return await policy.acall(abare)

    assert asyncio.run(via_acall()) == "abare"
    assert isinstance(policy.limiter, Limiter) and "max_wait=0.0" in repr(policy)


def test_key_function_gives_each_caller_its_own_limit_and_events_report_refusals() -> None:
    clock = FakeClock()
    policy = RateLimiter(
        MemoryLimiter(FixedWindow(1, 60), clock=clock), key=lambda user: f"user:{user}", clock=clock
    )
    seen: list[Event] = []
    policy.events.subscribe(seen.append)

    @policy
    def greet(user: str) -> str:
        return user

    @policy
    async def agreet(user: str) -> str:
        return user.upper()

    assert greet("ann") == "ann" and greet("bob") == "bob"
    with pytest.raises(RateLimitedError):
        greet("ann")
    assert seen == [LimitExceeded("", "user:ann", 1, 1, 60.0, 0.0)]
    # the key function sees the arguments as the caller wrote them (here by keyword)
    assert asyncio.run(agreet(user="dee")) == "DEE"
    with pytest.raises(RateLimitedError):
        asyncio.run(agreet("dee"))
    with pytest.raises(TypeError, match="pass key= explicitly"):
        policy.acquire()
    assert policy.acquire("user:cy").allowed


def test_acquire_waits_through_the_clock_up_to_max_wait() -> None:
    clock = FakeClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=2.0, clock=clock)
    assert policy.acquire().allowed
    assert policy.acquire().allowed  # waited 1 s on the fake clock
    assert clock.sleeps == [1.0]
    with pytest.raises(RateLimitedError) as info:
        policy.acquire(cost=3)  # can never fit a bucket of 1: refused at once, no waiting
    assert math.isinf(info.value.retry_after or 0) and clock.sleeps == [1.0]
    short = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=0.5, clock=clock)
    short.acquire()
    with pytest.raises(RateLimitedError):
        short.acquire()  # needs 1 s > 0.5 s: refused up front instead of waiting in vain
    assert clock.sleeps == [1.0]


def test_threads_are_admitted_in_arrival_order() -> None:
    clock = GatedClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=60, clock=clock)
    policy.acquire("k")
    order: list[int] = []

    def waiter(i: int) -> None:
        policy.acquire("k")
        order.append(i)

    threads = []
    for i in range(5):
        thread = threading.Thread(target=waiter, args=(i,))
        thread.start()
        threads.append(thread)
        while len(policy._queues.get("k", ())) < i + 1:  # wait until it is queued
            threading.Event().wait(0.001)  # real 1 ms polls: only to let the thread run
    # a newcomer while others wait does not barge in: it joins the end of the queue
    late = threading.Thread(target=waiter, args=(5,))
    late.start()
    while len(policy._queues.get("k", ())) < 6:
        threading.Event().wait(0.001)
    clock.gate.set()
    for thread in [*threads, late]:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4, 5]
    assert policy._queues == {}
    assert clock.sleeps == [1.0] * 6


def test_a_waiter_whose_deadline_passes_in_the_queue_gives_up() -> None:
    clock = YieldFirstClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=1.5, clock=clock)

    async def main() -> tuple[Any, Any]:
        await policy.aacquire()
        return await asyncio.gather(policy.aacquire(), policy.aacquire(), return_exceptions=True)

    first, second = asyncio.run(main())
    assert isinstance(first, Decision) and first.allowed
    assert isinstance(second, RateLimitedError)  # its turn came after 1 s; it needed 1 s more
    assert second.retry_after == 1.0
    assert policy._aqueues == {} and clock.sleeps == [1.0]


def test_tasks_are_admitted_in_order_and_cancelled_waiters_leave_the_queue() -> None:
    clock = YieldFirstClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=60, clock=clock)
    order: list[int] = []

    async def waiter(i: int) -> None:
        await policy.aacquire("k")
        order.append(i)

    async def main() -> None:
        await policy.aacquire("k")
        tasks = [asyncio.create_task(waiter(i)) for i in range(6)]
        await asyncio.sleep(0)
        assert len(policy._aqueues["k"]) == 6
        tasks[2].cancel()  # waiting in the queue
        tasks[0].cancel()  # the head, asleep: the next one takes over
        late = asyncio.create_task(waiter(9))  # joins the end, does not barge in
        results = await asyncio.wait_for(asyncio.gather(*tasks, late, return_exceptions=True), 5)
        assert [type(r).__name__ for r in results].count("CancelledError") == 2

    asyncio.run(main())
    assert order == [1, 3, 4, 5, 9]
    assert policy._aqueues == {}


def test_async_driver_with_a_foreign_limiter_uses_atry_acquire() -> None:
    clock = FakeClock()
    limiter = ForeignLimiter(TokenBucket(rate=1, burst=1), clock)
    policy = RateLimiter(limiter, max_wait=5, clock=clock)

    @policy
    async def work() -> int:
        return 1

    async def main() -> list[int]:
        return [await work(), await work(), (await policy.aacquire()).remaining]

    assert asyncio.run(main()) == [1, 1, 0]
    assert limiter.async_calls >= 3 and clock.sleeps == [1.0, 1.0]


def test_concurrency_releases_on_return_raise_and_cancel() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(Concurrency(limit=1), clock=clock)
    policy = RateLimiter(limiter, clock=clock)

    @policy
    def ok() -> str:
        assert policy.limiter.try_acquire().allowed is False  # the slot is held during the call
        return "ok"

    @policy
    def boom() -> None:
        raise KeyError("boom")

    assert ok() == "ok"
    with pytest.raises(KeyError):
        boom()
    started = asyncio.Event()

    @policy
    async def slow() -> None:
        started.set()
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(slow())
        await started.wait()
        with pytest.raises(RateLimitedError):
            await policy.acall(slow)  # the slot is taken
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert limiter.try_acquire().remaining == 0  # every slot came back
    limiter.release()
    assert policy.acquire().allowed
    policy.release()
    asyncio.run(policy.arelease())


def test_concurrency_waiting_polls_and_foreign_async_release() -> None:
    clock = FakeClock()
    limiter = ForeignLimiter(Concurrency(limit=1), clock)
    policy = RateLimiter(limiter, max_wait=0.05, poll_interval=0.01, clock=clock)

    @policy
    async def work() -> int:
        return 7

    assert asyncio.run(work()) == 7
    policy.acquire()
    with pytest.raises(RateLimitedError) as info:
        policy.acquire()
    assert info.value.retry_after == 0.0
    assert len(clock.sleeps) == 5 and sum(clock.sleeps) == pytest.approx(0.05)
    sync_policy = RateLimiter(limiter, clock=clock)
    with pytest.raises(RateLimitedError):
        sync_policy.call(lambda: None)
    policy.release()
    assert sync_policy.call(lambda: 3) == 3


def test_configuration_errors_list_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        RateLimiter(object(), key=3, cost=0, max_wait=-1, poll_interval=0)  # type: ignore[arg-type]
    assert len(info.value.problems) == 5

    class NoRelease:
        rule = Concurrency(1)

        def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
            raise AssertionError

    with pytest.raises(ConfigurationError, match="no release"):
        RateLimiter(NoRelease())  # type: ignore[arg-type]


def test_async_decorator_waits_when_the_fast_path_refuses() -> None:
    clock = FakeClock()
    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=1), clock=clock), max_wait=2, clock=clock)

    @policy
    async def work() -> int:
        return 1

    async def main() -> list[int]:
        return [await work(), await work()]

    assert asyncio.run(main()) == [1, 1] and clock.sleeps == [1.0]

"""Timeout (asyncio) and Pipeline composition."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

import buttress
from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import Event, TimeoutExpired
from buttress.resilience import CircuitBreaker, Constant, Pipeline, Retry, Timeout, Zero
from buttress.testing import FakeClock


async def forever() -> None:
    await asyncio.Event().wait()


def test_timeout_cancels_inner_coroutine_and_raises_ours() -> None:
    cleaned = []

    async def slow() -> None:
        try:
            await forever()
        finally:
            cleaned.append("finally ran")

    events: list[Event] = []
    t = Timeout(0.01, name="db")
    t.events.subscribe(events.append)
    with pytest.raises(buttress.TimeoutError) as info:
        asyncio.run(t.acall(slow))
    assert isinstance(info.value, builtins.TimeoutError)
    assert info.value.timeout == 0.01 and info.value.policy == "db"
    assert "'db' timed out after 0.01s" in str(info.value)
    assert cleaned == ["finally ran"]
    assert events == [TimeoutExpired("db", 0.01)]


def test_timeout_passes_fast_results_and_inner_timeout_errors() -> None:
    t = Timeout(5)

    async def quick(x: int) -> int:
        return x * 2

    async def inner_timeout() -> None:
        raise builtins.TimeoutError("from the driver")

    assert asyncio.run(t.acall(quick, 4)) == 8
    with pytest.raises(builtins.TimeoutError, match="from the driver") as info:
        asyncio.run(t.acall(inner_timeout))
    assert not isinstance(info.value, buttress.TimeoutError)


def test_timeout_refuses_sync_functions() -> None:
    t = Timeout(1)
    with pytest.raises(TypeError, match="coroutine"):
        t(lambda: 1)
    with pytest.raises(TypeError, match="sync function"):
        t.call(lambda: 1)


def test_timeout_validation_and_repr() -> None:
    with pytest.raises(ConfigurationError, match="seconds must be > 0"):
        Timeout(0)
    from datetime import timedelta

    assert Timeout(timedelta(milliseconds=250)).seconds == 0.25
    assert repr(Timeout(2, name="x")) == "Timeout(2, name='x')"


def test_timeout_decorator_keeps_coroutine_function() -> None:
    import inspect

    @Timeout(1)
    async def op() -> str:
        return "ok"

    assert inspect.iscoroutinefunction(op)
    assert asyncio.run(op()) == "ok"


def test_pipeline_order_is_outermost_first() -> None:
    trace: list[str] = []

    class Tracer(Retry):
        __slots__ = ("label",)

        def __init__(self, label: str) -> None:
            self.label = label
            super().__init__(attempts=1)

        def _chain_sync(self, nxt: Any) -> Any:
            inner = super()._chain_sync(nxt)

            def link(fn: Any, args: Any, kwargs: Any) -> Any:
                trace.append(self.label)
                return inner(fn, args, kwargs)

            return link

    p = Pipeline(Tracer("outer"), Tracer("middle"), Tracer("inner"))
    assert p.call(lambda: "x") == "x"
    assert trace == ["outer", "middle", "inner"]


def test_retry_around_breaker_counts_each_attempt() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, open_duration=10, clock=clock)
    retry = Retry(attempts=5, backoff=Constant(1), on=ConnectionError, clock=clock)
    calls = []

    @Pipeline(retry, breaker)
    def op() -> None:
        calls.append(1)
        raise ConnectionError("down")

    # two real attempts trip the breaker; the third attempt is rejected by the open breaker,
    # whose OpenCircuitError is not a ConnectionError, so the retry stops there.
    with pytest.raises(OpenCircuitError) as info:
        op()
    assert len(calls) == 2
    assert info.value.retry_after == pytest.approx(9.0)


def test_async_pipeline_timeout_retry_breaker() -> None:
    clock = FakeClock()
    attempts = []

    async def sometimes_slow() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await forever()
        return "ok"

    p = Pipeline(Retry(attempts=3, backoff=Zero(), clock=clock), CircuitBreaker(clock=clock), Timeout(0.01))
    assert asyncio.run(p.acall(sometimes_slow)) == "ok"
    assert len(attempts) == 2


def test_pipeline_is_a_policy_and_nests() -> None:
    inner = Pipeline(Retry(attempts=2, backoff=Zero()), CircuitBreaker())
    outer = Pipeline(Retry(attempts=2, backoff=Zero()), inner, name="outer")
    assert outer.call(lambda a, b: a + b, 1, b=2) == 3
    assert outer.policies[1] is inner
    assert "Pipeline(" in repr(outer)

    @outer
    async def op() -> int:
        return 5

    assert asyncio.run(op()) == 5


def test_pipeline_with_timeout_refuses_sync_at_decoration() -> None:
    with pytest.raises(TypeError, match="coroutine"):
        Pipeline(Timeout(1), Retry())(lambda: 1)


def test_pipeline_validation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Pipeline()
    with pytest.raises(TypeError, match="argument 1 must be a buttress policy"):
        Pipeline(Retry(), object())  # type: ignore[arg-type]


def test_one_timer_serves_many_concurrent_calls_and_cancels_only_the_late_ones() -> None:
    t = Timeout(0.03)

    async def work(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    async def main() -> list[Any]:
        # fast calls finish out of order around slow ones that must time out
        delays = [0.0, 0.2, 0.001, 0.2, 0.005, 0.0]
        # the slow calls sleep 0.2 s to be sure they outlive the 30 ms timeout
        calls = (t.acall(work, d) for d in delays)
        gathered: list[Any] = await asyncio.gather(*calls, return_exceptions=True)
        return gathered

    results = asyncio.run(main())
    assert results[0] == 0.0 and results[2] == 0.001 and results[4] == 0.005 and results[5] == 0.0
    assert isinstance(results[1], buttress.TimeoutError)
    assert isinstance(results[3], buttress.TimeoutError)


def test_timeout_works_across_event_loops() -> None:
    t = Timeout(0.01)

    async def slow() -> None:
        await forever()

    for _ in range(3):  # a new loop each time; the policy must re-arm on each
        with pytest.raises(buttress.TimeoutError):
            asyncio.run(t.acall(slow))
    assert asyncio.run(t.acall(asyncio.sleep, 0, "ok")) == "ok"


def test_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    t = Timeout(5)

    async def main() -> None:
        task = asyncio.create_task(t.acall(forever))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())


def test_expired_entries_do_not_leak() -> None:
    t = Timeout(10)

    async def main() -> int:
        for _ in range(100):
            await t.acall(asyncio.sleep, 0)
        assert t._last is not None
        return len(t._last.pending)

    assert asyncio.run(main()) == 0


def test_nested_timeouts_inner_fires_first() -> None:
    outer, inner = Timeout(5, name="outer"), Timeout(0.01, name="inner")

    async def main() -> None:
        with pytest.raises(buttress.TimeoutError) as info:
            await outer.acall(inner.acall, forever)
        assert info.value.policy == "inner"

    asyncio.run(main())

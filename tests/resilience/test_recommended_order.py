"""The recommended pipeline order: fallback > timeout(total) > retry > breaker > bulkhead >
timeout(attempt). Each test shows one reason the order is what it is."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from buttress.errors import BulkheadFullError, OpenCircuitError, TimeoutError
from buttress.events import BreakerStateChanged, Event, FallbackUsed, RetryExhausted, subscribe
from buttress.resilience import (
    Bulkhead,
    CircuitBreaker,
    Constant,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
    Zero,
    time_left,
)

FAILURES = (TimeoutError, ConnectionError, OpenCircuitError, BulkheadFullError)


def recommended(
    *,
    total: float = 0.2,
    attempt: float = 0.01,
    backoff: Any = None,
    threshold: int = 10,
    concurrent: int = 10,
) -> tuple[Pipeline, Retry, CircuitBreaker, Bulkhead]:
    retry = Retry("retry", attempts=5, backoff=backoff or Zero(), on=(TimeoutError, ConnectionError))
    breaker = CircuitBreaker("breaker", failure_threshold=threshold, ignore_on=BulkheadFullError)
    bulkhead = Bulkhead(concurrent, 0, name="bulkhead")
    pipeline = Pipeline(
        Fallback(value="fallback", on=FAILURES, name="fallback"),
        Timeout(total, name="total"),
        retry,
        breaker,
        bulkhead,
        Timeout(attempt, name="attempt"),
    )
    return pipeline, retry, breaker, bulkhead


def test_the_pipeline_is_in_the_recommended_order() -> None:
    pipeline, *_ = recommended()
    assert [type(p).__name__ for p in pipeline.policies] == [
        "Fallback", "Timeout", "Retry", "CircuitBreaker", "Bulkhead", "Timeout",
    ]  # fmt: skip


def test_a_slow_attempt_is_cut_by_its_own_timeout_and_retried() -> None:
    pipeline, *_ = recommended()
    attempts: list[int] = []

    async def search() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.Event().wait()
        return "found"

    assert asyncio.run(pipeline.acall(search)) == "found"
    assert len(attempts) == 2


def test_the_total_timeout_bounds_every_attempt_and_wait() -> None:
    pipeline, *_ = recommended(total=0.05, attempt=10.0)  # the per-attempt timeout is no help
    seen: list[float | None] = []

    async def hang() -> str:
        seen.append(time_left())
        await asyncio.Event().wait()
        return "never"

    started = time.perf_counter()
    assert asyncio.run(pipeline.acall(hang)) == "fallback"
    assert time.perf_counter() - started < 1.0
    # the per-attempt timeout shrank to what the total left
    assert seen and all(left is not None and left <= 0.05 for left in seen)


def test_retries_stop_before_a_wait_past_the_total_deadline() -> None:
    pipeline, retry, *_ = recommended(total=0.1, backoff=Constant(0.03))
    reasons: list[str] = []
    retry.events.subscribe(lambda e: reasons.append(e.reason) if isinstance(e, RetryExhausted) else None)
    attempts: list[float] = []

    async def down() -> str:
        attempts.append(time.perf_counter())
        raise ConnectionError("down")

    assert asyncio.run(pipeline.acall(down)) == "fallback"
    assert reasons == ["deadline"]
    assert 2 <= len(attempts) <= 4


def test_the_breaker_sees_every_attempt_and_its_refusal_is_not_retried() -> None:
    pipeline, _, breaker, _ = recommended(threshold=3)
    attempts: list[int] = []
    events: list[Event] = []

    async def down() -> str:
        attempts.append(1)
        raise ConnectionError("down")

    with subscribe(events.append):
        assert asyncio.run(pipeline.acall(down)) == "fallback"
    assert len(attempts) == 3  # three retried attempts tripped it; the fourth was refused
    assert breaker.state.value == "open"
    assert any(isinstance(e, BreakerStateChanged) for e in events)
    used = [e for e in events if isinstance(e, FallbackUsed)]
    assert len(used) == 1 and isinstance(used[0].error, OpenCircuitError)


def test_the_bulkhead_caps_attempts_and_a_full_one_does_not_trip_the_breaker() -> None:
    pipeline, _, breaker, bulkhead = recommended(concurrent=2, threshold=1, attempt=1.0, total=2.0)
    running = [0, 0]

    async def work() -> str:
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(0.005)
        running[0] -= 1
        return "ok"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(pipeline.acall(work) for _ in range(6))))

    results = asyncio.run(main())
    assert results.count("ok") == 2 and results.count("fallback") == 4
    assert running[1] == 2 and bulkhead.available == 2
    assert breaker.state.value == "closed"  # BulkheadFullError is ignored by the breaker

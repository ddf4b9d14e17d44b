"""Fault policies against a real server that the test pauses (hung) and kills (dead), then restarts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from buttress.events import Event
from buttress.resilience.ratelimit import Concurrency, FixedWindow
from buttress.resilience.ratelimit.redis import (
    AsyncRedisLimiter,
    LimiterUnavailableError,
    RedisLimiter,
    RedisRecovered,
    RedisUnavailable,
)
from buttress.testing import FakeClock

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.redis

TIMEOUT = 0.1
SLACK = 0.15  # scheduling on a loaded 2-core machine


def _up(limiter: Any) -> bool:
    # a function, so that mypy does not narrow the property between two readings
    return bool(limiter.available)


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result = fn(*args)
    except LimiterUnavailableError as exc:
        result = exc
    return result, time.perf_counter() - started


@pytest.mark.parametrize("on_error", ["fail_open", "fail_closed", "local"])
@pytest.mark.parametrize("fault", ["hung", "dead"])
def test_sync_policy_holds_within_the_timeout_and_recovers(server: Any, on_error: str, fault: str) -> None:
    events: list[Event] = []
    limiter = RedisLimiter(
        FixedWindow(limit=3, window=3600), redis.Redis.from_url(server.url), prefix="t:",
        on_error=on_error, timeout=TIMEOUT, retry_interval=0.0, name="api",  # type: ignore[arg-type]
    )  # fmt: skip
    limiter.events.subscribe(events.append)
    assert limiter.try_acquire("k").remaining == 2
    server.pause() if fault == "hung" else server.kill()
    try:
        outcomes = []
        for _ in range(5):
            result, elapsed = _timed(limiter.try_acquire, "k")
            assert elapsed < TIMEOUT + SLACK, elapsed
            outcomes.append(result)
        assert not _up(limiter)
        if on_error == "fail_open":
            assert all(d.allowed for d in outcomes)
        elif on_error == "fail_closed":
            assert all(isinstance(e, LimiterUnavailableError) for e in outcomes)
            assert isinstance(outcomes[0].__cause__, redis.RedisError)
            assert outcomes[0].policy == "api"
        else:  # the same rule, in memory: 3 per window
            assert [d.allowed for d in outcomes] == [True, True, True, False, False]
    finally:
        server.resume() if fault == "hung" else server.restart()
    decision = limiter.try_acquire("k")
    assert _up(limiter)
    if fault == "dead":  # the restarted server lost the count
        assert decision.allowed and decision.remaining == 2
    else:  # the resumed server still has it, and ran the commands that had timed out meanwhile
        assert decision.remaining <= 1
    kinds = [type(e) for e in events]
    assert kinds == [RedisUnavailable, RedisRecovered]
    assert isinstance(events[0], RedisUnavailable) and events[0].on_error == on_error
    assert isinstance(events[1], RedisRecovered) and events[1].downtime > 0
    limiter.close()


@pytest.mark.parametrize("fault", ["hung", "dead"])
def test_async_policy_holds_within_the_timeout_and_survives_a_restart(server: Any, fault: str) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(server.url)
        limiter = AsyncRedisLimiter(
            FixedWindow(limit=100, window=3600), client, prefix="t:", on_error="local", timeout=TIMEOUT,
            retry_interval=0.0,
        )  # fmt: skip
        # many pooled connections, all of which go stale when the server restarts
        first = await asyncio.gather(*(limiter.atry_acquire("k") for _ in range(16)))
        assert all(d.allowed for d in first)
        server.pause() if fault == "hung" else server.kill()
        try:
            started = time.perf_counter()
            during = await asyncio.gather(*(limiter.atry_acquire("k") for _ in range(16)))
            assert time.perf_counter() - started < TIMEOUT + SLACK
            assert all(d.allowed for d in during) and not limiter.available
        finally:
            server.resume() if fault == "hung" else server.restart()
        after = await asyncio.gather(*(limiter.atry_acquire("k") for _ in range(16)))
        assert all(d.allowed for d in after)
        assert _up(limiter)
        # every decision after the restart came from Redis, not from the fallback (after a pause,
        # the commands that timed out ran too once the server went on)
        if fault == "dead":
            assert min(d.remaining for d in after) == 100 - 16
        else:
            assert min(d.remaining for d in after) <= 100 - 32
        await limiter.aclose()
        await client.aclose()

    asyncio.run(main())


def test_redis_is_left_alone_for_retry_interval_after_a_fault(server: Any) -> None:
    clock = FakeClock()
    limiter = RedisLimiter(
        FixedWindow(limit=5, window=3600), redis.Redis.from_url(server.url), prefix="t:",
        on_error="fail_closed", timeout=TIMEOUT, retry_interval=2.0, clock=clock,
    )  # fmt: skip
    assert limiter.try_acquire("k").allowed
    server.kill()
    with pytest.raises(LimiterUnavailableError) as first:
        limiter.try_acquire("k")
    assert first.value.retry_after == pytest.approx(2.0)
    server.restart()
    clock.advance(1.0)
    with pytest.raises(LimiterUnavailableError) as skipped:  # not tried: still inside the interval
        limiter.try_acquire("k")
    assert skipped.value.retry_after == pytest.approx(1.0)
    assert isinstance(skipped.value.__cause__, redis.ConnectionError)
    clock.advance(1.0)
    assert limiter.try_acquire("k").remaining == 4  # the restarted server starts empty
    limiter.close()


def test_concurrency_units_granted_by_the_fallback_are_released_locally(server: Any) -> None:
    limiter = RedisLimiter(
        Concurrency(limit=2), redis.Redis.from_url(server.url), prefix="t:", on_error="local",
        timeout=TIMEOUT, retry_interval=0.0,
    )  # fmt: skip
    assert limiter.try_acquire("k").allowed  # from Redis
    server.kill()
    assert limiter.try_acquire("k", 2).allowed  # from the local limiter
    assert not limiter.try_acquire("k").allowed
    limiter.release("k", 2)  # local units go back locally; the Redis lease cannot be released now
    assert limiter.try_acquire("k", 2).allowed
    limiter.release("k", 3)
    server.restart()
    assert limiter.try_acquire("k", 2).allowed
    limiter.close()


def test_async_release_and_fail_open_concurrency_during_an_outage(server: Any) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(server.url)
        limiter = AsyncRedisLimiter(
            Concurrency(limit=1), client, prefix="t:", timeout=TIMEOUT, retry_interval=0.0
        )
        assert (await limiter.atry_acquire("k")).allowed
        server.pause()
        try:
            await limiter.arelease("k")  # cannot reach Redis: the lease will expire by itself
            assert not _up(limiter)
            decision = await limiter.atry_acquire("k")
            assert decision.allowed and decision.remaining == 0
            await limiter.arelease("k")
        finally:
            server.resume()
        await limiter.aclose()
        await client.aclose()

    asyncio.run(main())


def test_sync_release_during_an_outage_does_not_raise(server: Any) -> None:
    events: list[Event] = []
    limiter = RedisLimiter(
        Concurrency(limit=1), redis.Redis.from_url(server.url), prefix="t:", timeout=TIMEOUT
    )
    limiter.events.subscribe(events.append)
    assert limiter.try_acquire("k").allowed
    server.kill()
    limiter.release("k")
    assert [type(e) for e in events] == [RedisUnavailable]
    server.restart()
    limiter.close()


def test_cancelling_a_waiting_decision_cancels_it_and_is_not_a_fault(server: Any) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(server.url)
        # a long timeout: only the caller's cancellation can end the wait on the paused server
        limiter = AsyncRedisLimiter(FixedWindow(limit=10, window=3600), client, prefix="c:", timeout=5.0)
        seen: list[Event] = []
        limiter.events.subscribe(seen.append)
        assert (await limiter.atry_acquire("k")).allowed
        server.pause()
        try:
            task = asyncio.ensure_future(limiter.atry_acquire("k"))
            await asyncio.sleep(0.05)  # the decision is waiting for the paused server's reply
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _up(limiter) and seen == []  # the caller's cancel is not Redis failing
            # the caller's own deadline around a decision is the caller's, not a fault either
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await limiter.atry_acquire("k")
            assert _up(limiter) and seen == []
        finally:
            server.resume()
        decision = await limiter.atry_acquire("k")  # a new connection; the cancelled one was closed
        assert decision.allowed and _up(limiter)
        await limiter.aclose()
        await client.aclose()

    asyncio.run(main())

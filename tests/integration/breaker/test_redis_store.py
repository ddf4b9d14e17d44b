"""RedisBreakerStore: one breaker's state shared by many instances and processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import time
from typing import Any

import pytest

from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import BreakerStateChanged, Event
from buttress.resilience import CircuitBreaker
from buttress.resilience.backoff import Exponential
from buttress.resilience.breaker import BreakerState
from buttress.resilience.breaker.redis import BreakerStoreUnavailableError, RedisBreakerStore
from buttress.resilience.ratelimit.redis import RedisRecovered, RedisUnavailable
from tests.integration.breaker._workers import count_failures, grab_probes

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.redis


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom("down")


def ok() -> int:
    return 1


def _breaker(client: Any, prefix: str, name: str = "payments", **options: Any) -> CircuitBreaker:
    store_options = {
        k: options.pop(k) for k in ("on_error", "timeout", "retry_interval", "ttl") if k in options
    }
    options.setdefault("failure_threshold", 3)
    store = RedisBreakerStore(client, prefix=prefix, **store_options)
    return CircuitBreaker(name, store=store, **options)


def _state(breaker: CircuitBreaker) -> BreakerState:
    # a function, so that mypy does not narrow the property between two readings
    return breaker.state


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises((Boom, OpenCircuitError)):
            breaker.call(boom)


def test_instances_share_trips_and_a_late_joiner_keeps_the_state(
    redis_client: Any, redis_prefix: str
) -> None:
    first = _breaker(redis_client, redis_prefix)
    second = _breaker(redis_client, redis_prefix)
    changes: list[Event] = []
    second.events.subscribe(changes.append)
    _fail(first, 2)
    assert second.counts.consecutive_failures == 2
    _fail(second, 1)
    assert _state(first) is BreakerState.OPEN
    joiner = _breaker(redis_client, redis_prefix)  # pybreaker's storage would reset it here
    assert _state(joiner) is BreakerState.OPEN
    with pytest.raises(OpenCircuitError) as info:
        joiner.call(ok)
    assert 0 < info.value.retry_after <= 30  # type: ignore[operator]
    assert joiner.totals.trips == 1 and joiner.totals.failures == 3 and joiner.totals.rejected == 1
    assert [(e.old, e.new, e.reason) for e in changes if isinstance(e, BreakerStateChanged)] == [
        ("closed", "open", "3 consecutive failures")
    ]
    for key in redis_client.scan_iter(match=f"{redis_prefix}*"):
        assert b"{payments}" in key and redis_client.pttl(key) > 0
    first.reset()
    assert _state(second) is BreakerState.CLOSED


def test_half_open_probes_close_or_reopen_the_shared_breaker(redis_client: Any, redis_prefix: str) -> None:
    options: dict[str, Any] = {"open_duration": 0.03, "half_open_max_calls": 2}
    a = _breaker(redis_client, redis_prefix, **options)
    b = _breaker(redis_client, redis_prefix, **options)
    _fail(a, 3)
    time.sleep(0.04)
    assert _state(b) is BreakerState.HALF_OPEN
    p1, p2 = a.acquire(), b.acquire()
    assert p1.probe and p2.probe
    with pytest.raises(OpenCircuitError, match="half-open"):
        a.acquire()
    a.record(p1)
    b.record(p2, Boom())  # one failure of two probes needing two successes: open again
    assert _state(a) is BreakerState.OPEN
    time.sleep(0.04)
    probes = [a.acquire(), b.acquire()]
    a.record(probes[0], KeyboardInterrupt())  # ignored: frees its probe slot
    probes.append(b.acquire())
    for permit in probes[1:]:
        a.record(permit)
    assert _state(b) is BreakerState.CLOSED
    assert b.totals.ignored == 1


def test_half_open_max_duration_and_reset_interval(redis_client: Any, redis_prefix: str) -> None:
    slow = _breaker(redis_client, redis_prefix, "slow", open_duration=0.01, half_open_max_duration=0.02)
    _fail(slow, 3)
    time.sleep(0.015)
    stale = slow.acquire()
    time.sleep(0.025)
    assert _state(slow) is BreakerState.OPEN  # the probe took too long
    slow.record(stale)  # from an earlier generation: totalled, not counted
    assert slow.totals.successes == 1 and slow.counts.requests == 0
    periodic = _breaker(redis_client, redis_prefix, "periodic", reset_interval=0.02)
    _fail(periodic, 2)
    assert periodic.counts.consecutive_failures == 2
    time.sleep(0.025)
    assert periodic.counts.consecutive_failures == 0
    _fail(periodic, 2)
    assert _state(periodic) is BreakerState.CLOSED


def test_the_count_window_rate_rules(redis_client: Any, redis_prefix: str) -> None:
    rate = _breaker(
        redis_client, redis_prefix, "rate", failure_threshold=None, failure_rate_threshold=0.5,
        window_size=4, minimum_calls=4,
    )  # fmt: skip
    for fn in (ok, boom, ok, ok, ok, boom):  # the ring drops the oldest outcome
        with pytest.raises(Boom) if fn is boom else _nothing():
            rate.call(fn)
    assert _state(rate) is BreakerState.CLOSED
    _fail(rate, 1)
    snapshot = rate.snapshot()
    assert snapshot.state is BreakerState.OPEN and snapshot.totals.trips == 1
    slow_calls = _breaker(
        redis_client, redis_prefix, "slowcalls", failure_threshold=None, slow_call_rate_threshold=0.5,
        slow_call_duration=0.001, window_size=2, minimum_calls=2,
    )  # fmt: skip
    for _ in range(2):
        permit = slow_calls.acquire()
        slow_calls.record(permit, duration=1.0)
    assert _state(slow_calls) is BreakerState.OPEN


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_ready_to_trip_sees_the_shared_counts(redis_client: Any, redis_prefix: str) -> None:
    seen = []

    def ready(counts: Any) -> bool:
        seen.append(counts.total_failures)
        return bool(counts.total_failures >= 2)

    breaker = _breaker(redis_client, redis_prefix, "custom", failure_threshold=None, ready_to_trip=ready)
    _fail(breaker, 2)
    assert seen == [1, 2] and breaker.state is BreakerState.OPEN


def test_forced_states_are_shared_and_illegal_moves_refused(redis_client: Any, redis_prefix: str) -> None:
    a = _breaker(redis_client, redis_prefix)
    b = _breaker(redis_client, redis_prefix)
    a.force_open()
    assert _state(b) is BreakerState.FORCED_OPEN
    with pytest.raises(OpenCircuitError, match="forced open"):
        b.call(ok)
    b.force_closed()
    _fail(a, 5)
    assert _state(a) is BreakerState.FORCED_CLOSED
    b.reset()
    b.reset()  # closed -> closed starts a fresh generation
    _fail(a, 3)
    assert _state(b) is BreakerState.OPEN
    a.force_open()
    store = a._store
    with pytest.raises(ValueError, match="cannot move"):
        store.force(BreakerState.HALF_OPEN, 0.0, "by hand")


def test_unsupported_configurations_fail_at_construction(redis_client: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(
            failure_rate_threshold=0.5, window_type="time", window_size=10, open_duration=Exponential(),
            store=RedisBreakerStore(redis_client, ttl=0),
        )  # fmt: skip
    message = str(info.value)
    assert "needs a name" in message and "window_type='time'" in message and "Backoff" in message
    assert "ttl" in message
    with pytest.raises(ConfigurationError, match="on_error"):
        RedisBreakerStore(redis_client, on_error="maybe")  # type: ignore[arg-type]
    named = RedisBreakerStore(redis_client, name="explicit")
    CircuitBreaker(store=named)
    assert named.name == "explicit"


def test_script_reload_after_flush(server: Any) -> None:
    client = redis.Redis.from_url(server.url)
    breaker = _breaker(client, "p:")
    _fail(breaker, 1)
    client.script_flush()
    assert breaker.counts.consecutive_failures == 1
    breaker._store.close()  # type: ignore[attr-defined]
    client.close()


@pytest.mark.parametrize("fault", ["hung", "dead"])
def test_fault_policies_hold_within_the_timeout_and_recover(server: Any, fault: str) -> None:
    client = redis.Redis.from_url(server.url)
    opts: dict[str, Any] = {"timeout": 0.1, "retry_interval": 0.0, "failure_threshold": 2}
    open_ = _breaker(client, "o:", on_error="fail_open", **opts)
    closed = _breaker(client, "c:", on_error="fail_closed", **opts)
    local = _breaker(client, "l:", on_error="local", **opts)
    events: list[Event] = []
    local._store.events.subscribe(events.append)  # type: ignore[attr-defined]
    _fail(local, 1)
    server.pause() if fault == "hung" else server.kill()
    try:
        started = time.perf_counter()
        assert open_.call(ok) == 1
        _fail(open_, 3)  # outcomes are not counted while failing open
        assert _state(open_) is BreakerState.CLOSED
        with pytest.raises(BreakerStoreUnavailableError) as info:
            closed.call(ok)
        assert info.value.__cause__ is not None and isinstance(info.value, OpenCircuitError)
        assert _state(closed) is BreakerState.OPEN
        _fail(local, 2)  # the same rule, in memory
        assert _state(local) is BreakerState.OPEN
        with pytest.raises(OpenCircuitError):
            local.call(ok)
        with pytest.raises(BreakerStoreUnavailableError):
            local.reset()
        assert time.perf_counter() - started < 12 * (0.1 + 0.1)
    finally:
        server.resume() if fault == "hung" else server.restart()
    # Redis is the truth again: the local breaker's trip is forgotten
    expected = 1 if fault == "hung" else 0
    assert local.counts.consecutive_failures == expected
    assert closed.call(ok) == 1
    assert [type(e) for e in events] == [RedisUnavailable, RedisRecovered]
    for breaker in (open_, closed, local):
        breaker._store.close()  # type: ignore[attr-defined]
    client.close()


def test_each_store_operation_returns_within_the_timeout_while_redis_hangs(server: Any) -> None:
    client = redis.Redis.from_url(server.url)
    breaker = _breaker(client, "h:", on_error="fail_open", timeout=0.1, retry_interval=0.0)
    server.pause()
    try:
        for op in (lambda: breaker.call(ok), lambda: breaker.snapshot(), lambda: breaker.acquire()):
            started = time.perf_counter()
            op()
            assert time.perf_counter() - started < 0.1 + 0.15
    finally:
        server.resume()
    breaker._store.close()  # type: ignore[attr-defined]
    client.close()


def test_async_breaker_on_the_shared_store(redis_client: Any, redis_prefix: str) -> None:
    breaker = _breaker(redis_client, redis_prefix)

    async def fail() -> None:
        raise Boom("down")

    async def main() -> BreakerState:
        for _ in range(3):
            with pytest.raises(Boom):
                await breaker.acall(fail)
        return breaker.state

    assert asyncio.run(main()) is BreakerState.OPEN


# -- many processes ---------------------------------------------------------------------------------
def _spawn(fn: Any, *args: Any) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [pool.submit(fn, *args) for _ in range(2)]
        return [f.result(timeout=60) for f in futures]


@pytest.mark.slow
def test_exactly_half_open_max_calls_probes_across_two_processes(
    redis_server: Any, redis_client: Any, redis_prefix: str
) -> None:
    breaker = _breaker(redis_client, redis_prefix, "shared", open_duration=0.5, half_open_max_calls=3)
    _fail(breaker, 3)
    assert _state(breaker) is BreakerState.OPEN
    start_at = time.time() + 1.5  # after the open duration and the workers' imports
    got = _spawn(grab_probes, redis_server.url, redis_prefix, 4, start_at, 50)
    assert sum(got) == 3, got
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.totals.rejected == 2 * 4 * 50 - 3


@pytest.mark.slow
def test_two_processes_trip_one_breaker_once(redis_server: Any, redis_client: Any, redis_prefix: str) -> None:
    start_at = time.time() + 1.5
    ran = _spawn(count_failures, redis_server.url, redis_prefix, 4, start_at, 40)
    breaker = _breaker(redis_client, redis_prefix, "shared", failure_threshold=50, open_duration=60)
    snapshot = breaker.snapshot()
    assert snapshot.state is BreakerState.OPEN and snapshot.totals.trips == 1
    # calls admitted while closed may finish after the trip: at most one per thread in flight
    assert 50 <= sum(ran) <= 50 + 8, ran
    assert snapshot.totals.failures == sum(ran)

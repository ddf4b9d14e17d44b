"""Tests of buttress.resilience.breaker.adaptive.AdaptiveThrottle (Google SRE adaptive throttling)."""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import CallRejected, Event
from buttress.resilience.breaker import adaptive
from buttress.resilience.breaker.adaptive import AdaptiveThrottle
from buttress.testing import FakeClock


class Backend(Exception):
    """A failure of the remote side."""


class NotFound(Exception):
    """An answer from the backend that the caller treats as a success (like an HTTP 404)."""


class Abort(BaseException):
    """A BaseException that is not an Exception, like a cancellation."""


class CountingRandom:
    """An injected random source returning a fixed value and counting its draws."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.draws = 0

    def __call__(self) -> float:
        self.draws += 1
        return self.value


def make(
    *, value: float = 0.0, clock: FakeClock | None = None, **kwargs: object
) -> tuple[AdaptiveThrottle, CountingRandom, FakeClock]:
    clock = clock or FakeClock()
    rand = CountingRandom(value)
    throttle = AdaptiveThrottle("backend", clock=clock, random=rand, **kwargs)  # type: ignore[arg-type]
    return throttle, rand, clock


def feed(throttle: AdaptiveThrottle, *, failures: int = 0, successes: int = 0) -> None:
    for _ in range(failures):
        throttle.mark_failed()
    for _ in range(successes):
        throttle.mark_success()


# -- configuration ---------------------------------------------------------------------------


def test_defaults() -> None:
    throttle = AdaptiveThrottle()
    assert throttle.name == ""
    assert throttle.k == 1 / 0.6
    assert (throttle.min_requests, throttle.window, throttle.buckets) == (100, 3.0, 10)
    assert throttle.requests == throttle.accepts == 0
    assert throttle.drop_probability == 0.0
    assert repr(throttle) == (
        f"AdaptiveThrottle(name='', k={1 / 0.6!r}, min_requests=100, window=3.0, buckets=10)"
    )


def test_window_accepts_timedelta() -> None:
    assert AdaptiveThrottle(window=timedelta(milliseconds=1500)).window == 1.5


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        AdaptiveThrottle(
            k=0.5,
            min_requests=-1,
            window=0.0,
            buckets=0,
            is_failure="yes",  # type: ignore[arg-type]
            random=0.5,  # type: ignore[arg-type]
        )
    assert info.value.problems == (
        "k must be >= 1.0 (got 0.5)",
        "min_requests must be an integer >= 0 (got -1)",
        "window must be > 0 (got 0.0)",
        "buckets must be an integer >= 1 (got 0)",
        "is_failure must be a callable or None (got 'yes')",
        "random must be a callable returning floats in [0, 1) (got 0.5)",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": math.inf}, "k must be finite (got inf)"),
        ({"k": math.nan}, "k must not be NaN"),
        ({"window": math.inf}, "window must be finite (got inf)"),
        ({"min_requests": 1.5}, "min_requests must be an integer >= 0 (got 1.5)"),
    ],
)
def test_invalid_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AdaptiveThrottle(**kwargs)  # type: ignore[arg-type]
    assert info.value.problems == (message,)


# -- the throttle ------------------------------------------------------------------------------


def test_no_drops_below_min_requests() -> None:
    throttle, rand, _ = make(min_requests=100)
    feed(throttle, failures=99)
    assert throttle.drop_probability == 0.0
    assert all(throttle.allow() for _ in range(10))
    assert rand.draws == 0
    assert (throttle.requests, throttle.accepts) == (99, 0)  # allowed calls are not counted yet


def test_throttling_starts_at_min_requests() -> None:
    throttle, _, _ = make(min_requests=100)
    feed(throttle, failures=100)
    assert throttle.drop_probability == 100 / 101
    assert throttle.allow() is False


def test_drop_probability_formula_exact() -> None:
    throttle, rand, _ = make(k=2.0, min_requests=10)
    feed(throttle, failures=20, successes=10)
    p = (30 - 2.0 * 10) / (30 + 1)
    assert throttle.drop_probability == p
    rand.value = p  # a draw equal to p is not below it: allowed
    assert throttle.allow() is True
    assert (throttle.requests, throttle.accepts) == (30, 10)
    rand.value = math.nextafter(p, 0.0)  # just below p: dropped
    assert throttle.allow() is False
    assert (throttle.requests, throttle.accepts) == (31, 10)
    assert throttle.drop_probability == (31 - 2.0 * 10) / (31 + 1)
    assert rand.draws == 2


def test_healthy_backend_never_draws() -> None:
    throttle, rand, _ = make(min_requests=0)
    feed(throttle, successes=50, failures=20)  # 70 requests <= 1.67 * 50 accepts
    assert throttle.drop_probability == 0.0
    assert throttle.allow() is True
    assert rand.draws == 0


def test_k_is_the_tolerated_ratio_of_requests_to_accepts() -> None:
    throttle, _, _ = make(k=2.0, min_requests=0)
    feed(throttle, successes=50, failures=50)  # requests == 2 * accepts: the edge
    assert throttle.drop_probability == 0.0
    throttle.mark_failed()
    assert throttle.drop_probability == 1 / 102


def test_local_rejections_raise_the_drop_rate() -> None:
    throttle, _, _ = make(k=2.0, min_requests=10, value=0.0)
    feed(throttle, failures=10)
    for expected in range(11, 16):
        assert throttle.allow() is False
        assert (throttle.requests, throttle.accepts) == (expected, 0)
        assert throttle.drop_probability == expected / (expected + 1)


def test_recovery_as_the_window_slides() -> None:
    throttle, _, clock = make(k=2.0, min_requests=10, window=3.0, buckets=3)
    feed(throttle, failures=100)  # bucket [0, 1)
    assert throttle.drop_probability == 100 / 101
    clock.advance(1.0)
    feed(throttle, successes=50)  # bucket [1, 2): the backend answers again
    assert throttle.drop_probability == (150 - 100) / 151
    clock.advance(1.0)
    feed(throttle, successes=50)
    assert throttle.drop_probability == 0.0  # 200 requests, 100 accepts, k = 2
    clock.advance(1.0)  # the failures of [0, 1) expire
    assert (throttle.requests, throttle.accepts) == (100, 100)
    assert throttle.drop_probability == 0.0
    clock.advance(3.0)
    assert (throttle.requests, throttle.accepts) == (0, 0)


def test_allow_sees_bucket_expiry_without_other_reads() -> None:
    # allow() reads the running totals lock-free unless a bucket expired; the expiry path
    # must still drop old failures.
    throttle, rand, clock = make(k=2.0, min_requests=10, window=1.0, buckets=2, value=0.0)
    feed(throttle, failures=20)
    assert throttle.allow() is False
    clock.advance(1.0)
    assert throttle.allow() is True
    assert rand.draws == 1


def test_reset_forgets_the_window() -> None:
    throttle, _, _ = make(min_requests=1)
    feed(throttle, failures=10)
    throttle.reset()
    assert (throttle.requests, throttle.accepts, throttle.drop_probability) == (0, 0, 0.0)


# -- events -------------------------------------------------------------------------------------


def test_rejection_emits_call_rejected() -> None:
    throttle, _, _ = make(min_requests=1, value=0.0)
    seen: list[Event] = []
    with throttle.events.subscribe(seen.append):
        assert throttle.allow() is True  # nothing to throttle yet
        throttle.mark_failed()
        assert throttle.allow() is False
    assert seen == [CallRejected(policy="backend", reason="throttled", retry_after=None)]


def test_no_event_is_built_without_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(**kwargs: object) -> CallRejected:
        raise AssertionError("an event was built although nobody listens")

    monkeypatch.setattr(adaptive, "CallRejected", forbidden)
    throttle, _, _ = make(min_requests=1, value=0.0)
    throttle.mark_failed()
    assert throttle.allow() is False


# -- as a policy -----------------------------------------------------------------------------


def is_backend_failure(exc: BaseException) -> bool:
    return not isinstance(exc, NotFound)


def test_call_records_success_and_returns_result() -> None:
    throttle, _, _ = make()

    def add(x: int, y: int = 0) -> int:
        return x + y

    assert throttle.call(add, 2, y=3) == 5
    assert (throttle.requests, throttle.accepts) == (1, 1)


def test_call_records_failure_and_propagates_the_same_exception() -> None:
    throttle, _, _ = make()
    error = Backend("down")

    def boom() -> None:
        raise error

    with pytest.raises(Backend) as info:
        throttle.call(boom)
    assert info.value is error
    assert (throttle.requests, throttle.accepts) == (1, 0)


def test_excluded_exception_counts_as_an_answer() -> None:
    throttle, _, _ = make(is_failure=is_backend_failure)

    def missing() -> None:
        raise NotFound("no such key")

    with pytest.raises(NotFound):
        throttle.call(missing)
    assert (throttle.requests, throttle.accepts) == (1, 1)


def test_base_exception_is_not_recorded_unless_claimed() -> None:
    def abort() -> None:
        raise Abort

    throttle, _, _ = make()
    with pytest.raises(Abort):
        throttle.call(abort)
    assert throttle.requests == 0

    claiming, _, _ = make(is_failure=lambda exc: True)
    with pytest.raises(Abort):
        claiming.call(abort)
    assert (claiming.requests, claiming.accepts) == (1, 0)


def test_rejected_call_raises_open_circuit_error_and_does_not_run() -> None:
    throttle, _, _ = make(min_requests=1, value=0.0)
    throttle.mark_failed()
    ran: list[int] = []
    with pytest.raises(OpenCircuitError) as info:
        throttle.call(ran.append, 1)
    assert ran == []
    assert (info.value.policy, info.value.state, info.value.retry_after) == ("backend", "throttled", None)
    assert "'backend'" in str(info.value)
    assert throttle.requests == 2


def test_anonymous_throttle_error_has_no_policy() -> None:
    throttle = AdaptiveThrottle(min_requests=1, random=lambda: 0.0, clock=FakeClock())
    throttle.mark_failed()
    with pytest.raises(OpenCircuitError) as info:
        throttle.call(print)
    assert info.value.policy is None


def test_decorator_sync_and_async() -> None:
    throttle, _, _ = make()

    @throttle
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    @throttle
    async def triple(x: int) -> int:
        return 3 * x

    assert double.__name__ == "double"
    assert double.__doc__ == "Twice x."
    assert double(4) == 8
    assert asyncio.run(triple(4)) == 12
    assert (throttle.requests, throttle.accepts) == (2, 2)


def test_acall_success_failure_exclusion_and_rejection() -> None:
    throttle, rand, _ = make(is_failure=is_backend_failure, min_requests=3, k=1.0, value=0.99)

    async def ok() -> str:
        return "ok"

    async def fail(exc: BaseException) -> None:
        raise exc

    async def scenario() -> None:
        assert await throttle.acall(ok) == "ok"
        with pytest.raises(NotFound):
            await throttle.acall(fail, NotFound())
        with pytest.raises(Backend):
            await throttle.acall(fail, Backend())
        with pytest.raises(Abort):
            await throttle.acall(fail, Abort())  # claimed by is_backend_failure
        assert (throttle.requests, throttle.accepts) == (4, 2)
        rand.value = 0.0
        with pytest.raises(OpenCircuitError):
            await throttle.acall(ok)
        assert (throttle.requests, throttle.accepts) == (5, 2)

    asyncio.run(scenario())


def test_guard_sync() -> None:
    throttle, _, _ = make(is_failure=is_backend_failure, min_requests=4, k=1.0, value=0.0)
    with throttle.guard():
        pass
    with pytest.raises(NotFound), throttle.guard():
        raise NotFound
    with pytest.raises(Backend), throttle.guard():
        raise Backend
    assert (throttle.requests, throttle.accepts) == (3, 2)
    with pytest.raises(Backend), throttle.guard():
        raise Backend
    entered = False
    with pytest.raises(OpenCircuitError) as info, throttle.guard():
        entered = True
    assert not entered
    assert info.value.state == "throttled"
    assert (throttle.requests, throttle.accepts) == (5, 2)


def test_guard_async() -> None:
    throttle, _, _ = make(min_requests=3, k=1.0, value=0.0)

    async def scenario() -> None:
        async with throttle.guard():
            pass
        with pytest.raises(Backend):
            async with throttle.guard():
                raise Backend
        with pytest.raises(Abort):
            async with throttle.guard():
                raise Abort  # not an Exception and not claimed: not recorded
        assert (throttle.requests, throttle.accepts) == (2, 1)
        throttle.mark_failed()
        with pytest.raises(OpenCircuitError):
            async with throttle.guard():
                raise AssertionError("the block must not run")

    asyncio.run(scenario())


def test_guard_is_one_reusable_object() -> None:
    throttle, _, _ = make()
    guard = throttle.guard()
    assert throttle.guard() is guard
    with guard, guard:  # nested use: the guard keeps no per-use state
        pass
    assert throttle.accepts == 2


# -- concurrency --------------------------------------------------------------------------------


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` in ``count`` threads that start together and switch very often."""
    barrier = threading.Barrier(count)

    def start(index: int) -> None:
        barrier.wait()
        target(index)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads inside the window updates
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


def test_eight_threads_requests_and_accepts_add_up() -> None:
    throttle, _, _ = make(min_requests=10**9, window=60.0)
    per_thread = 2000

    def work(index: int) -> None:
        for i in range(per_thread):
            if (i + index) % 2:
                throttle.mark_failed()
            else:
                with throttle.guard():
                    pass

    run_threads(8, work)
    assert throttle.requests == 8 * per_thread
    assert throttle.accepts == 8 * per_thread // 2


def test_eight_threads_with_rejections_account_for_every_call() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(k=1.2, min_requests=50, window=60.0, clock=clock, random=lambda: 0.1)
    per_thread = 1500
    outcomes = [[0, 0, 0] for _ in range(8)]  # accepted, failed, rejected per thread

    def fail() -> None:
        raise Backend

    def work(index: int) -> None:
        mine = outcomes[index]
        for i in range(per_thread):
            try:
                throttle.call(fail) if i % 3 == 0 else throttle.call(int)
                mine[0] += 1
            except Backend:
                mine[1] += 1
            except OpenCircuitError:
                mine[2] += 1

    run_threads(8, work)
    accepted = sum(o[0] for o in outcomes)
    rejected = sum(o[2] for o in outcomes)
    assert sum(map(sum, outcomes)) == 8 * per_thread
    assert throttle.requests == 8 * per_thread
    assert throttle.accepts == accepted
    assert rejected > 0


def test_eight_threads_while_buckets_expire_keep_the_totals_consistent() -> None:
    clock = FakeClock()
    throttle = AdaptiveThrottle(min_requests=10**9, window=1.0, buckets=10, clock=clock)

    def work(index: int) -> None:
        for i in range(3000):
            if index == 0:
                clock.advance(0.1)  # one bucket per iteration
            if i % 2:
                throttle.mark_failed()
            else:
                throttle.mark_success()

    run_threads(8, work)
    window = throttle._window
    # The running totals must equal what the buckets hold, after expiry raced with records.
    assert window.totals(clock.monotonic()) == (
        sum(window._bucket_calls),
        sum(window._bucket_failures),
        sum(window._bucket_slow),
    )
    clock.advance(1.0)
    assert (throttle.requests, throttle.accepts) == (0, 0)

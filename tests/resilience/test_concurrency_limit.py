"""Adaptive concurrency limits: AIMD and Gradient2 semantics, bounds, and the policy."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import buttress
from buttress.errors import BulkheadFullError, ConfigurationError
from buttress.events import BulkheadRejected, Event, LimitChanged
from buttress.resilience import AIMDLimit, ConcurrencyLimit, GradientLimit, LimitAlgorithm
from buttress.testing import FakeClock


def test_aimd_grows_by_one_when_used_and_backs_off_on_drops_and_slow_calls() -> None:
    aimd = AIMDLimit(initial_limit=10, min_limit=2, max_limit=12, backoff_ratio=0.5, timeout=1.0)
    assert aimd.update(0.1, inflight=5, dropped=False) == 11
    assert aimd.update(0.1, inflight=2, dropped=False) == 11  # app-limited: no growth
    assert aimd.update(0.1, inflight=11, dropped=False) == 12
    assert aimd.update(0.1, inflight=12, dropped=False) == 12  # max
    assert aimd.update(0.1, inflight=12, dropped=True) == 6
    assert aimd.update(2.0, inflight=1, dropped=False) == 3  # slower than timeout counts as a drop
    assert aimd.update(2.0, inflight=1, dropped=False) == 2
    assert aimd.update(2.0, inflight=1, dropped=False) == 2  # min
    assert aimd.limit == 2 and isinstance(aimd, LimitAlgorithm)
    assert repr(aimd) == "AIMDLimit(limit=2, min_limit=2, max_limit=12)"
    # a ratio close to 1 still decreases by at least one
    slow = AIMDLimit(initial_limit=5, min_limit=1, max_limit=5, backoff_ratio=0.99)
    assert slow.update(0.0, inflight=5, dropped=True) == 4


def test_gradient_grows_while_latency_is_flat_and_sheds_as_it_rises() -> None:
    gradient = GradientLimit(initial_limit=20, min_limit=5, max_limit=100, warmup=5)
    for _ in range(50):
        gradient.update(0.010, inflight=gradient.limit, dropped=False)
    grown = gradient.limit
    assert grown > 40
    assert gradient.long_rtt == pytest.approx(0.010)
    for _ in range(10):
        gradient.update(0.040, inflight=gradient.limit, dropped=False)
    assert gradient.limit < grown * 0.6  # latency x4: most of the head-room is gone at once
    for _ in range(200):
        gradient.update(0.040, inflight=100, dropped=False)
    assert gradient.limit <= 10  # sustained queueing: near queue_size / (1 - 0.5 gradient)
    assert repr(gradient) == f"GradientLimit(limit={gradient.limit}, min_limit=5, max_limit=100)"


def test_gradient_ignores_app_limited_samples_and_recovers_its_baseline() -> None:
    gradient = GradientLimit(initial_limit=20, min_limit=1, max_limit=50, warmup=1)
    assert gradient.update(1.0, inflight=1, dropped=False) == 20  # under half used: no change
    # a long overload raised the baseline; once latency falls, long/short > 2 decays it quickly
    for _ in range(5):
        gradient.update(0.1, inflight=20, dropped=False)
    assert gradient.long_rtt < 0.9
    assert gradient.update(0.0, inflight=20, dropped=False) >= 1  # a zero latency cannot divide by zero


def test_limit_validation_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        AIMDLimit(initial_limit=0, min_limit=0, max_limit=0, backoff_ratio=1.5, timeout=0)
    assert len(info.value.problems) == 5
    with pytest.raises(ConfigurationError, match="min_limit <= initial_limit <= max_limit"):
        AIMDLimit(initial_limit=5, min_limit=10, max_limit=20)
    with pytest.raises(ConfigurationError) as info:
        GradientLimit(smoothing=0, queue_size=-1, long_window=0, warmup=0)
    assert len(info.value.problems) == 4


samples = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
        st.integers(min_value=0, max_value=1000),
        st.booleans(),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50)),
    ratio=st.floats(min_value=0.5, max_value=0.99),
    feed=samples,
)
def test_aimd_stays_within_its_bounds(
    bounds: tuple[int, int, int], ratio: float, feed: list[tuple[float, int, bool]]
) -> None:
    low, up, extra = bounds
    initial, high = low + up, low + up + extra
    aimd = AIMDLimit(initial_limit=initial, min_limit=low, max_limit=high, backoff_ratio=ratio)
    for rtt, inflight, dropped in feed:
        limit = aimd.update(rtt, inflight, dropped)
        assert low <= limit <= high and limit == aimd.limit


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50)),
    smoothing=st.floats(min_value=0.01, max_value=1.0),
    queue_size=st.integers(0, 20),
    feed=samples,
)
def test_gradient_stays_within_its_bounds(
    bounds: tuple[int, int, int], smoothing: float, queue_size: int, feed: list[tuple[float, int, bool]]
) -> None:
    low, up, extra = bounds
    initial, high = low + up, low + up + extra
    gradient = GradientLimit(
        initial_limit=initial, min_limit=low, max_limit=high, smoothing=smoothing, queue_size=queue_size,
        long_window=10, warmup=2,
    )  # fmt: skip
    for rtt, inflight, dropped in feed:
        limit = gradient.update(rtt, inflight, dropped)
        assert low <= limit <= high and limit == gradient.limit


def test_the_policy_refuses_beyond_the_limit_and_learns() -> None:
    clock = FakeClock()
    events: list[Event] = []
    limiter = ConcurrencyLimit(AIMDLimit(initial_limit=2, min_limit=1, max_limit=4), name="db", clock=clock)
    limiter.events.subscribe(events.append)
    first, second = limiter.acquire(), limiter.acquire()
    assert limiter.inflight == 2
    with pytest.raises(BulkheadFullError, match="concurrency limit 'db' reached: 2 calls in flight") as info:
        limiter.acquire()
    assert info.value.policy == "db"
    clock.advance(0.01)
    limiter.release(first)
    limiter.release(second)
    assert limiter.limit == 4 and limiter.inflight == 0
    assert events[0] == BulkheadRejected("db", "limit", None, 2, 0)
    assert events[1:] == [LimitChanged("db", 2, 3, 0.01, False), LimitChanged("db", 3, 4, 0.01, False)]
    anonymous = ConcurrencyLimit(AIMDLimit(initial_limit=1, min_limit=1, max_limit=1))
    anonymous.acquire()
    with pytest.raises(BulkheadFullError, match=r"^concurrency limit reached"):
        anonymous.acquire()


def test_timeouts_are_drops_other_errors_are_ignored() -> None:
    clock = FakeClock()
    limiter = ConcurrencyLimit(AIMDLimit(initial_limit=10, min_limit=1, max_limit=20), clock=clock)

    @limiter
    def timed_out() -> None:
        raise buttress.TimeoutError("slow", timeout=1.0)

    @limiter
    def bad_request() -> None:
        raise ValueError("400")

    with pytest.raises(buttress.TimeoutError):
        timed_out()
    assert limiter.limit == 9
    with pytest.raises(ValueError):
        bad_request()
    assert limiter.limit == 9 and limiter.inflight == 0
    with limiter.guard():
        assert limiter.inflight == 1
    assert limiter.inflight == 0


def test_async_use_and_guard() -> None:
    limiter = ConcurrencyLimit(AIMDLimit(initial_limit=1, min_limit=1, max_limit=3), drop_on=(KeyError,))

    async def ok() -> str:
        return "ok"

    async def lost() -> None:
        raise KeyError("dropped")

    async def main() -> tuple[str, int, int, int]:
        result = await limiter.acall(ok)
        grown = limiter.limit
        with pytest.raises(KeyError):
            await limiter.acall(lost)
        dropped = limiter.limit
        async with limiter.guard():
            assert limiter.inflight == 1
        return result, grown, dropped, limiter.limit

    assert asyncio.run(main()) == ("ok", 2, 1, 2)
    assert "ConcurrencyLimit(AIMDLimit(" in repr(limiter)


def test_default_algorithm_and_validation() -> None:
    assert isinstance(ConcurrencyLimit().algorithm, GradientLimit)
    assert ConcurrencyLimit().limit == 20
    with pytest.raises(ConfigurationError) as info:
        ConcurrencyLimit(object(), drop_on="timeouts", name="x")  # type: ignore[arg-type]
    assert len(info.value.problems) == 2


def test_drops_work_before_latency_collapses() -> None:
    # A dependency that takes 10 ms for up to 10 concurrent calls and queues the rest, so its
    # latency grows with every call beyond 10. Load steps from 8 to 60 concurrent callers: the
    # gradient limit falls towards the capacity and refuses the excess at once, so the latency
    # of the admitted calls stays near its baseline instead of growing sixfold.
    clock = FakeClock()
    limiter = ConcurrencyLimit(GradientLimit(initial_limit=20, min_limit=1, max_limit=200), clock=clock)

    def round_trip(callers: int) -> tuple[int, float]:
        permits, refused = [], 0
        for _ in range(callers):
            try:
                permits.append(limiter.acquire())
            except BulkheadFullError:
                refused += 1
        latency = 0.01 * max(1.0, len(permits) / 10)
        clock.advance(latency)
        for permit in permits:
            limiter.release(permit)
        return refused, latency

    for _ in range(50):
        assert round_trip(8) == (0, 0.01)
    late = [round_trip(60) for _ in range(20)][1:]
    assert all(refused >= 40 for refused, _ in late)
    assert all(latency <= 0.02 for _, latency in late)  # uncontrolled: 0.06
    assert limiter.limit <= 20

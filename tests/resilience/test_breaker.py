"""Tests of the classic circuit breaker: buttress.resilience.breaker (classic, store, _model)."""

# `breaker.state` is a property whose value changes between reads (that is what these tests check);
# mypy narrows it after the first `assert breaker.state is ...` as if it were a plain attribute.
# mypy: disable-error-code="comparison-overlap,unreachable"

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import BreakerStateChanged, CallRejected, Event, subscribe
from buttress.resilience.backoff import STOP, Exponential, StopType
from buttress.resilience.breaker import classic
from buttress.resilience.breaker._model import (
    TRANSITIONS,
    BreakerConfig,
    BreakerState,
    Counts,
    Outcome,
    Totals,
    describe_rules,
)
from buttress.resilience.breaker.classic import CircuitBreaker
from buttress.resilience.breaker.store import (
    BreakerStore,
    MemoryBreakerStore,
    Permit,
    Rejection,
    Snapshot,
    Transition,
)
from buttress.testing import FakeClock

S = BreakerState


class Backend(Exception):
    """A failure of the remote side."""


class Ignored(Exception):
    """An error that says nothing about the dependency's health."""


class HTTPError(Exception):
    """An error carrying a status code, like an HTTP client's."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class Abort(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


def make(clock: FakeClock | None = None, **kwargs: Any) -> tuple[CircuitBreaker, FakeClock]:
    clock = clock or FakeClock()
    return CircuitBreaker("backend", clock=clock, **kwargs), clock


def ok() -> str:
    return "ok"


def boom() -> str:
    raise Backend("down")


def fail(breaker: CircuitBreaker, times: int = 1, error: BaseException | None = None) -> None:
    def raiser() -> None:
        raise error if error is not None else Backend("down")

    expected: type[BaseException] = type(error) if error is not None else Backend
    for _ in range(times):
        with pytest.raises(expected):
            breaker.call(raiser)


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        assert breaker.call(ok) == "ok"


def trip(breaker: CircuitBreaker) -> None:
    """Fail until the breaker opens (for breakers using the consecutive-failure rule)."""
    while breaker.state is S.CLOSED:
        fail(breaker)
    assert breaker.state is S.OPEN


def record(breaker: CircuitBreaker) -> list[Event]:
    seen: list[Event] = []
    breaker.events.subscribe(seen.append)
    return seen


def changes(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.old, e.new) for e in events if isinstance(e, BreakerStateChanged)]


# -- the model ---------------------------------------------------------------------------


def test_transition_table_covers_every_state_and_has_no_shortcuts() -> None:
    assert set(TRANSITIONS) == set(BreakerState)
    assert all(state not in targets for state, targets in TRANSITIONS.items())
    # Closed never skips open on its way to half-open, and forced states leave only by hand.
    assert S.HALF_OPEN not in TRANSITIONS[S.CLOSED]
    assert TRANSITIONS[S.FORCED_OPEN] == {S.CLOSED, S.FORCED_CLOSED}
    assert TRANSITIONS[S.FORCED_CLOSED] == {S.CLOSED, S.FORCED_OPEN}
    assert str(S.HALF_OPEN) == "half_open"


def test_describe_rules_lists_every_rule() -> None:
    breaker, _ = make(
        failure_threshold=3,
        failure_rate_threshold=0.5,
        slow_call_rate_threshold=0.25,
        ready_to_trip=lambda counts: False,
        window_size=10,
    )
    assert describe_rules(breaker.config) == [
        "3 consecutive failures",
        "failure rate >= 50%",
        "slow-call rate >= 25%",
        "ready_to_trip(counts)",
    ]


def test_repr_names_rules_and_open_duration() -> None:
    breaker, _ = make(failure_threshold=3, failure_rate_threshold=0.5, window_size=10, open_duration=30)
    assert repr(breaker) == (
        "CircuitBreaker(name='backend', trips on 3 consecutive failures or failure rate >= 50%, open 30s)"
    )
    growing, _ = make(open_duration=Exponential(initial=1, multiplier=2, randomization_factor=0))
    assert repr(growing).startswith(
        "CircuitBreaker(name='backend', trips on 5 consecutive failures, open for "
    )
    assert "Exponential(initial=1.0, multiplier=2.0" in repr(growing)


# -- consecutive failures ----------------------------------------------------------------


def test_default_rule_is_five_consecutive_failures() -> None:
    breaker, _ = make()
    assert breaker.config.failure_threshold == 5
    fail(breaker, 4)
    assert breaker.state is S.CLOSED
    assert breaker.counts.consecutive_failures == 4
    fail(breaker)
    assert breaker.state is S.OPEN


def test_a_success_resets_the_consecutive_failures() -> None:
    breaker, _ = make(failure_threshold=3)
    fail(breaker, 2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state is S.CLOSED
    assert breaker.counts == Counts(
        requests=5, total_successes=1, total_failures=4, consecutive_successes=0, consecutive_failures=2
    )
    fail(breaker)
    assert breaker.state is S.OPEN


def test_counts_follow_gobreaker_semantics() -> None:
    breaker, _ = make(failure_threshold=10)
    succeed(breaker, 2)
    fail(breaker)
    succeed(breaker, 3)
    assert breaker.counts == Counts(
        requests=6, total_successes=5, total_failures=1, consecutive_successes=3, consecutive_failures=0
    )


def test_a_trip_starts_a_new_generation_with_zero_counts() -> None:
    breaker, _ = make(failure_threshold=2)
    succeed(breaker)
    fail(breaker, 2)
    assert breaker.state is S.OPEN
    assert breaker.counts == Counts(0, 0, 0, 0, 0)


# -- failure rate --------------------------------------------------------------------------


def test_failure_rate_over_a_count_window_waits_for_minimum_calls() -> None:
    breaker, _ = make(failure_rate_threshold=0.5, window_size=4, minimum_calls=4)
    assert breaker.config.failure_threshold is None  # a rate rule replaces the default
    fail(breaker, 3)  # 100 % failures, but only 3 calls
    assert breaker.state is S.CLOSED
    succeed(breaker)  # 4 calls, 75 %: a success never trips
    assert breaker.state is S.CLOSED
    fail(breaker)  # the ring holds F F S F: 75 %
    assert breaker.state is S.OPEN
    assert breaker.totals.trips == 1


def test_failure_rate_over_a_count_window_forgets_the_oldest_outcome() -> None:
    breaker, _ = make(failure_rate_threshold=0.5, window_size=4, minimum_calls=4)
    seen = record(breaker)
    fail(breaker)
    succeed(breaker, 4)  # the failure has been pushed out of the ring: S S S S
    fail(breaker)  # S S S F: 25 %
    assert breaker.state is S.CLOSED
    fail(breaker)  # S S F F: 50 % >= 50 %
    assert breaker.state is S.OPEN
    assert isinstance(seen[0], BreakerStateChanged)
    assert seen[0].reason == "failure rate 50% over the last 4 calls"


def test_minimum_calls_defaults_to_the_count_window_size_up_to_100() -> None:
    assert make(failure_rate_threshold=0.5, window_size=10)[0].config.minimum_calls == 10
    assert make(failure_rate_threshold=0.5, window_size=500)[0].config.minimum_calls == 100
    assert make(failure_rate_threshold=0.5, window_type="time", window_size=5)[0].config.minimum_calls == 100


def test_failure_rate_over_a_time_window_forgets_old_buckets() -> None:
    breaker, clock = make(failure_rate_threshold=0.5, window_type="time", window_size=10, minimum_calls=4)
    fail(breaker, 2)  # t = 0
    clock.advance(5)
    succeed(breaker, 2)  # 4 calls, 50 % failures, but successes do not trip
    assert breaker.state is S.CLOSED
    clock.advance(5.5)  # t = 10.5: the bucket [0, 1) with both failures has expired
    fail(breaker)  # S S F: 3 calls < minimum_calls
    assert breaker.state is S.CLOSED
    fail(breaker)  # S S F F: 50 %
    assert breaker.state is S.OPEN


def test_time_window_without_expiry_would_have_tripped() -> None:
    breaker, clock = make(failure_rate_threshold=0.5, window_type="time", window_size=10, minimum_calls=4)
    fail(breaker, 2)
    clock.advance(5)
    succeed(breaker)
    fail(breaker)  # F F S F within 10 s: 75 %
    assert breaker.state is S.OPEN


def test_failure_threshold_and_rate_rules_combine() -> None:
    breaker, _ = make(failure_threshold=2, failure_rate_threshold=0.9, window_size=10, minimum_calls=10)
    fail(breaker, 2)
    assert breaker.state is S.OPEN


# -- slow calls ----------------------------------------------------------------------------


def slow_function(clock: FakeClock, seconds: float) -> Callable[[], str]:
    def call() -> str:
        clock.advance(seconds)
        return "slow"

    return call


def test_slow_call_rate_trips_on_slow_successes() -> None:
    breaker, clock = make(slow_call_rate_threshold=0.5, slow_call_duration=2, window_size=4, minimum_calls=4)
    succeed(breaker, 2)
    assert breaker.call(slow_function(clock, 1.9)) == "slow"  # not slow yet
    assert breaker.state is S.CLOSED
    assert breaker.call(slow_function(clock, 2.0)) == "slow"  # exactly the duration counts as slow
    assert breaker.state is S.CLOSED  # 1 slow of 4
    breaker.call(slow_function(clock, 5.0))  # the ring now holds S S(1.9 s) slow slow: 2 of 4
    assert breaker.state is S.OPEN
    assert breaker.counts.requests == 0
    assert breaker.totals.successes == 5


def test_slow_failures_count_for_both_rates() -> None:
    breaker, clock = make(
        slow_call_rate_threshold=1.0, failure_rate_threshold=1.0, slow_call_duration=1, window_size=2
    )

    def slow_failure() -> None:
        clock.advance(3)
        raise Backend("slow and broken")

    with pytest.raises(Backend):
        breaker.call(slow_failure)
    succeed(breaker)  # fast success: neither rate is 100 %
    assert breaker.state is S.CLOSED
    with pytest.raises(Backend):
        breaker.call(slow_failure)  # ring: S, slow F -> 50 % / 50 %
    assert breaker.state is S.CLOSED
    with pytest.raises(Backend):
        breaker.call(slow_failure)
    assert breaker.state is S.OPEN


def test_slow_calls_are_measured_in_guard_and_acquire_record() -> None:
    breaker, clock = make(slow_call_rate_threshold=1.0, slow_call_duration=1, window_size=2)
    with breaker.guard():
        clock.advance(1)
    permit = breaker.acquire()
    breaker.record(permit, duration=1.5)
    assert breaker.state is S.OPEN


def test_durations_are_ignored_without_a_slow_call_rule() -> None:
    breaker, clock = make(failure_rate_threshold=0.5, window_size=2)
    breaker.call(slow_function(clock, 1000))
    permit = breaker.acquire()
    breaker.record(permit, duration=1e9)
    assert breaker.state is S.CLOSED


def test_a_slow_probe_is_a_failed_probe() -> None:
    breaker, clock = make(
        slow_call_rate_threshold=0.5, slow_call_duration=1, window_size=2, minimum_calls=1, open_duration=10
    )
    breaker.call(slow_function(clock, 2))
    assert breaker.state is S.OPEN
    clock.advance(10)
    breaker.call(slow_function(clock, 2))  # the probe succeeded, but slowly
    assert breaker.state is S.OPEN
    clock.advance(10)
    breaker.call(ok)
    assert breaker.state is S.CLOSED


# -- ready_to_trip -------------------------------------------------------------------------


def test_ready_to_trip_sees_counts_after_each_failure_only() -> None:
    seen: list[Counts] = []

    def ready(counts: Counts) -> bool:
        seen.append(counts)
        return counts.requests >= 3 and counts.total_failures / counts.requests >= 0.6

    breaker, _ = make(ready_to_trip=ready)
    assert breaker.config.failure_threshold is None  # no default rule besides the callback
    succeed(breaker)
    fail(breaker)
    assert seen == [Counts(2, 1, 1, 0, 1)]
    fail(breaker)
    assert breaker.state is S.OPEN
    assert seen[-1] == Counts(3, 1, 2, 0, 2)


def test_ready_to_trip_is_called_outside_the_lock() -> None:
    held: list[bool] = []
    store = MemoryBreakerStore()

    def ready(counts: Counts) -> bool:
        free = store._lock.acquire(blocking=False)
        if free:
            store._lock.release()
        held.append(not free)
        assert breaker.state is S.CLOSED  # reading the breaker from the callback does not deadlock
        return True

    breaker, _ = make(ready_to_trip=ready, store=store)
    fail(breaker)
    assert held == [False]
    assert breaker.state is S.OPEN


def test_ready_to_trip_only_runs_when_the_builtin_rules_did_not_trip() -> None:
    calls: list[Counts] = []

    def ready(counts: Counts) -> bool:
        calls.append(counts)
        return False

    breaker, _ = make(failure_threshold=2, ready_to_trip=ready)
    fail(breaker)
    assert len(calls) == 1
    fail(breaker)  # the consecutive rule trips first; no need to ask
    assert len(calls) == 1
    assert breaker.state is S.OPEN


def test_ready_to_trip_that_raises_is_logged_and_does_not_trip(caplog: pytest.LogCaptureFixture) -> None:
    def ready(counts: Counts) -> bool:
        raise RuntimeError("bug in the callback")

    breaker, _ = make(ready_to_trip=ready)
    with caplog.at_level(logging.ERROR, logger="buttress.breaker"):
        fail(breaker, 3)
    assert breaker.state is S.CLOSED
    assert len(caplog.records) == 3
    assert "ready_to_trip of breaker 'backend' raised" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None


def test_ready_to_trip_does_not_trip_a_breaker_that_moved_on() -> None:
    box: list[CircuitBreaker] = []

    def ready(counts: Counts) -> bool:
        box[0].reset()  # the breaker starts a new generation before the answer arrives
        return True

    breaker, _ = make(ready_to_trip=ready)
    box.append(breaker)
    fail(breaker)
    assert breaker.state is S.CLOSED


def test_ready_to_trip_is_not_asked_while_forced_closed() -> None:
    calls: list[Counts] = []

    def ready(counts: Counts) -> bool:
        calls.append(counts)
        return True

    breaker, _ = make(ready_to_trip=ready)
    breaker.force_closed()
    fail(breaker, 3)
    assert calls == []
    assert breaker.state is S.FORCED_CLOSED


# -- reset_interval ------------------------------------------------------------------------


def test_reset_interval_clears_closed_counts_cyclically() -> None:
    breaker, clock = make(failure_threshold=3, reset_interval=10)
    assert not breaker._store.fast  # the interval needs the clock on every call
    fail(breaker, 2)  # t = 0 starts the first interval
    clock.advance(9.9)
    assert breaker.counts.consecutive_failures == 2
    clock.advance(0.1)  # t = 10: a new interval, counts cleared
    assert breaker.counts == Counts(0, 0, 0, 0, 0)
    fail(breaker, 2)
    clock.advance(10)  # t = 20: cleared again
    fail(breaker, 2)
    assert breaker.state is S.CLOSED
    fail(breaker)  # three within one interval
    assert breaker.state is S.OPEN


def test_reset_interval_starts_with_the_first_reading() -> None:
    clock = FakeClock(100)
    breaker, _ = make(clock, failure_threshold=3, reset_interval=10)
    clock.advance(50)  # nothing read yet: no interval is running
    assert breaker.counts.requests == 0  # t = 150 starts the first interval
    fail(breaker, 2)
    clock.advance(9)
    fail(breaker)
    assert breaker.state is S.OPEN


def test_reset_interval_restarts_when_the_breaker_closes() -> None:
    breaker, clock = make(failure_threshold=2, reset_interval=10, open_duration=5)
    fail(breaker, 2)  # t = 0
    clock.advance(5)
    succeed(breaker)  # the probe closes the breaker at t = 5
    assert breaker.state is S.CLOSED
    clock.advance(9)
    fail(breaker)  # t = 14, inside the interval [5, 15)
    clock.advance(1)  # t = 15: cleared
    fail(breaker)
    assert breaker.state is S.CLOSED
    assert breaker.counts.consecutive_failures == 1


def test_reset_interval_does_not_apply_to_forced_closed() -> None:
    breaker, clock = make(failure_threshold=3, reset_interval=10)
    breaker.force_closed()
    fail(breaker, 2)
    clock.advance(30)
    assert breaker.counts.total_failures == 2


# -- open duration -------------------------------------------------------------------------


def test_open_rejects_with_retry_after_until_the_open_duration_has_passed() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=30)
    fail(breaker)
    clock.advance(10)
    assert breaker.retry_after == 20
    with pytest.raises(OpenCircuitError) as info:
        breaker.call(ok)
    error = info.value
    assert error.retry_after == 20
    assert error.policy == "backend"
    assert error.state == "open"
    assert str(error) == "circuit breaker 'backend' is open; retry after 20s"
    clock.advance(19.999)
    assert breaker.state is S.OPEN
    clock.advance(0.001)
    assert breaker.state is S.HALF_OPEN
    assert breaker.retry_after == 0.0


def test_retry_after_is_zero_unless_open() -> None:
    breaker, _ = make(failure_threshold=1)
    assert breaker.retry_after == 0.0
    breaker.force_open()
    assert breaker.retry_after == 0.0
    with pytest.raises(OpenCircuitError) as info:
        breaker.call(ok)
    assert info.value.retry_after is None  # forced open: no time is known
    assert str(info.value) == "circuit breaker 'backend' is forced open"


def test_open_duration_accepts_a_timedelta() -> None:
    breaker, _ = make(failure_threshold=1, open_duration=timedelta(minutes=1))
    fail(breaker)
    assert breaker.retry_after == 60.0


def test_open_duration_zero_goes_half_open_at_once() -> None:
    breaker, _ = make(failure_threshold=1, open_duration=0)
    fail(breaker)
    assert breaker.state is S.HALF_OPEN


def test_open_duration_grows_with_a_backoff_and_resets_on_close() -> None:
    breaker, clock = make(
        failure_threshold=1, open_duration=Exponential(initial=1, multiplier=2, randomization_factor=0)
    )
    durations = []
    fail(breaker)
    for _ in range(4):
        durations.append(breaker.retry_after)
        clock.advance(breaker.retry_after)
        fail(breaker)  # the probe fails: open again, for longer
    assert durations == [1.0, 2.0, 4.0, 8.0]
    assert breaker.retry_after == 16.0
    clock.advance(16)
    succeed(breaker)  # the probe succeeds: closed, and the backoff starts over
    fail(breaker)
    assert breaker.retry_after == 1.0


def test_open_backoff_is_restarted_by_a_reset() -> None:
    breaker, clock = make(
        failure_threshold=1, open_duration=Exponential(initial=1, multiplier=3, randomization_factor=0)
    )
    fail(breaker)
    clock.advance(1)
    fail(breaker)
    assert breaker.retry_after == 3.0
    breaker.reset()
    fail(breaker)
    assert breaker.retry_after == 1.0


def test_each_breaker_draws_from_its_own_copy_of_the_backoff() -> None:
    schedule = Exponential(initial=1, multiplier=2, randomization_factor=0)
    first, clock = make(failure_threshold=1, open_duration=schedule)
    second, _ = make(clock, failure_threshold=1, open_duration=schedule)
    fail(first)
    clock.advance(1)
    fail(first)
    fail(second)
    assert (first.retry_after, second.retry_after) == (2.0, 1.0)
    assert schedule.next_backoff() == 1.0  # the configured object itself was never drawn from


class TwoThenStop:
    """A backoff that gives 5 s, then 7 s, then STOP (the breaker keeps the last duration)."""

    def __init__(self) -> None:
        self.drawn = 0

    def next_backoff(self) -> float | StopType:
        self.drawn += 1
        return {1: 5.0, 2: 7.0}.get(self.drawn, STOP)

    def reset(self) -> None:
        self.drawn = 0

    def clone(self) -> TwoThenStop:
        return TwoThenStop()


def test_a_backoff_that_stops_keeps_the_last_open_duration() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=TwoThenStop())
    fail(breaker)
    observed = []
    for _ in range(3):
        observed.append(breaker.retry_after)
        clock.advance(breaker.retry_after)
        fail(breaker)
    assert observed == [5.0, 7.0, 7.0]


# -- half-open -------------------------------------------------------------------------------


def open_then_wait(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(breaker.retry_after)
    assert breaker.state is S.HALF_OPEN


def test_half_open_admits_exactly_half_open_max_calls_probes() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=3, open_duration=10)
    open_then_wait(breaker, clock)
    seen = record(breaker)
    permits = [breaker.acquire() for _ in range(3)]
    assert all(permit.probe for permit in permits)
    with pytest.raises(OpenCircuitError) as info:
        breaker.acquire()
    assert info.value.state == "half_open"
    assert info.value.retry_after is None
    assert str(info.value) == "circuit breaker 'backend' is half-open and all its probe calls are in flight"
    assert seen == [CallRejected("backend", "breaker half_open", None)]
    for permit in permits[:2]:
        breaker.record(permit)
    assert breaker.state is S.HALF_OPEN  # by default every probe must succeed
    with pytest.raises(OpenCircuitError):
        breaker.acquire()  # finished probes do not free their slot
    breaker.record(permits[2])
    assert breaker.state is S.CLOSED
    assert breaker.totals.rejected == 2


def test_half_open_success_threshold_closes_before_all_probes_return() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=3, half_open_success_threshold=2)
    open_then_wait(breaker, clock)
    first, second, third = (breaker.acquire() for _ in range(3))
    breaker.record(first, Backend("still down"))  # one failure still leaves room for 2 successes
    assert breaker.state is S.HALF_OPEN
    breaker.record(second)
    breaker.record(third)
    assert breaker.state is S.CLOSED


def test_half_open_reopens_as_soon_as_the_threshold_is_out_of_reach() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=3, half_open_success_threshold=2)
    open_then_wait(breaker, clock)
    seen = record(breaker)
    first, second, third = (breaker.acquire() for _ in range(3))
    breaker.record(first, Backend())
    breaker.record(second, Backend())  # only one probe left: 2 successes are impossible
    assert breaker.state is S.OPEN
    assert changes(seen) == [("half_open", "open")]
    assert isinstance(seen[0], BreakerStateChanged)
    assert seen[0].reason == "2 half-open probe(s) failed"
    breaker.record(third)  # the straggler belongs to the old generation
    assert breaker.state is S.OPEN
    assert breaker.counts.requests == 0


def test_with_the_default_threshold_one_failed_probe_reopens() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=4)
    assert breaker.config.half_open_success_threshold == 4
    open_then_wait(breaker, clock)
    breaker.call(ok)
    breaker.call(ok)
    fail(breaker)
    assert breaker.state is S.OPEN


def test_half_open_counts_show_the_probes() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=3, half_open_success_threshold=2)
    open_then_wait(breaker, clock)
    fail(breaker)
    succeed(breaker)
    assert breaker.counts == Counts(2, 1, 1, 1, 0)


def test_half_open_max_duration_reopens_when_probes_hang() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=10, half_open_max_duration=5)
    open_then_wait(breaker, clock)
    seen = record(breaker)
    permit = breaker.acquire()  # a probe that never comes back in time
    clock.advance(4.9)
    assert breaker.state is S.HALF_OPEN
    clock.advance(0.1)
    assert breaker.state is S.OPEN
    assert isinstance(seen[0], BreakerStateChanged)
    assert seen[0].reason == "half-open probes did not finish within 5s"
    breaker.record(permit)  # its late success is stale
    assert breaker.state is S.OPEN
    assert breaker.retry_after == 10
    assert breaker.totals.trips == 2


def test_half_open_max_duration_grows_the_backoff() -> None:
    breaker, clock = make(
        failure_threshold=1,
        open_duration=Exponential(initial=1, multiplier=2, randomization_factor=0),
        half_open_max_duration=timedelta(seconds=3),
    )
    fail(breaker)
    clock.advance(1)
    breaker.acquire()
    clock.advance(3)
    assert breaker.retry_after == 2.0


# -- classification ------------------------------------------------------------------------


def test_ignore_on_counts_neither_way() -> None:
    breaker, _ = make(failure_threshold=2, ignore_on=Ignored)
    fail(breaker)
    fail(breaker, 5, Ignored("not our business"))
    assert breaker.counts == Counts(1, 0, 1, 0, 1)
    assert breaker.state is S.CLOSED
    assert breaker.totals.ignored == 5


def test_base_exceptions_are_ignored_and_propagate() -> None:
    breaker, _ = make(failure_threshold=1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    with pytest.raises(asyncio.CancelledError):
        breaker.call(cancelled)
    wrapped = breaker(interrupted)
    with pytest.raises(KeyboardInterrupt):
        wrapped()
    assert breaker.state is S.CLOSED
    assert breaker.totals == Totals(successes=0, failures=0, ignored=3, rejected=0, trips=0)


def test_an_ignored_probe_frees_its_slot() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=2, ignore_on=Ignored)
    open_then_wait(breaker, clock)
    first, second = breaker.acquire(), breaker.acquire()
    with pytest.raises(OpenCircuitError):
        breaker.acquire()
    breaker.record(first, Ignored())
    third = breaker.acquire()  # the ignored probe's slot is free again
    assert third.probe
    breaker.record(second, asyncio.CancelledError())
    fourth = breaker.acquire()
    breaker.record(third)
    breaker.record(fourth)
    assert breaker.state is S.CLOSED


def test_a_stale_ignored_probe_does_not_free_a_slot_of_the_next_period() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=2, ignore_on=Ignored, open_duration=1)
    open_then_wait(breaker, clock)
    old_probe = breaker.acquire()
    breaker.record(breaker.acquire(), Backend())  # reopens; old_probe is now stale
    clock.advance(1)
    assert breaker.state is S.HALF_OPEN
    breaker.acquire()
    breaker.acquire()
    breaker.record(old_probe, Ignored())
    with pytest.raises(OpenCircuitError):
        breaker.acquire()


def test_failure_on_narrows_what_counts_as_a_failure() -> None:
    breaker, _ = make(failure_threshold=2, failure_on=(Backend, TimeoutError))
    fail(breaker)
    fail(breaker, 1, ValueError("bad input"))  # the dependency answered: a success
    fail(breaker)
    assert breaker.state is S.CLOSED
    assert breaker.counts == Counts(3, 1, 2, 0, 1)
    fail(breaker, 1, TimeoutError())
    assert breaker.state is S.OPEN


def test_is_failure_lets_a_4xx_count_as_a_success() -> None:
    breaker, _ = make(failure_threshold=2, is_failure=lambda exc: getattr(exc, "status", 500) >= 500)
    fail(breaker, 1, HTTPError(503))
    fail(breaker, 1, HTTPError(404))  # a client error: the server is fine
    fail(breaker, 1, HTTPError(500))
    assert breaker.state is S.CLOSED
    assert breaker.counts.total_successes == 1
    fail(breaker, 1, HTTPError(502))
    assert breaker.state is S.OPEN


def test_is_failure_replaces_failure_on_but_not_ignore_on() -> None:
    breaker, _ = make(
        failure_threshold=1,
        failure_on=Backend,
        ignore_on=Ignored,
        is_failure=lambda exc: isinstance(exc, KeyError),
    )
    fail(breaker, 1, Backend())  # failure_on no longer applies
    fail(breaker, 1, Ignored())
    assert breaker.totals == Totals(successes=1, failures=0, ignored=1, rejected=0, trips=0)
    fail(breaker, 1, KeyError("x"))
    assert breaker.state is S.OPEN


def test_is_failure_success_through_the_decorator() -> None:
    breaker, _ = make(failure_threshold=1, is_failure=lambda exc: False)

    @breaker
    def not_found() -> None:
        raise HTTPError(404)

    with pytest.raises(HTTPError):
        not_found()
    assert breaker.state is S.CLOSED
    assert breaker.counts.total_successes == 1


def test_result_is_failure_classifies_return_values() -> None:
    breaker, _ = make(failure_threshold=2, result_is_failure=lambda result: result is None)

    @breaker
    def lookup(key: str) -> str | None:
        return None if key == "missing" else key.upper()

    assert lookup("a") == "A"
    assert lookup("missing") is None  # the result is returned unchanged
    assert breaker.call(lookup, "missing") is None
    assert breaker.state is S.OPEN
    with pytest.raises(OpenCircuitError):
        lookup("a")


def test_result_is_failure_through_call_acall_and_acquire() -> None:
    breaker, _ = make(failure_threshold=3, result_is_failure=lambda result: result == "bad")
    assert breaker.call(lambda: "bad") == "bad"

    async def answer(value: str) -> str:
        return value

    assert asyncio.run(breaker.acall(answer, "bad")) == "bad"
    assert asyncio.run(breaker.acall(answer, "good")) == "good"
    assert breaker.counts == Counts(3, 1, 2, 1, 0)
    breaker.record(breaker.acquire(), result="bad")
    assert breaker.counts.consecutive_failures == 1


def test_result_is_failure_on_an_async_decorated_function() -> None:
    breaker, _ = make(failure_threshold=1, result_is_failure=lambda result: result < 0)

    @breaker
    async def balance(value: int) -> int:
        return value

    assert inspect.iscoroutinefunction(balance)
    assert asyncio.run(balance(5)) == 5
    assert asyncio.run(balance(-1)) == -1
    assert breaker.state is S.OPEN


def test_result_is_failure_in_half_open_reopens() -> None:
    breaker, clock = make(
        failure_threshold=1, result_is_failure=lambda result: result == "bad", open_duration=1
    )
    breaker.call(lambda: "bad")
    clock.advance(1)
    breaker.call(lambda: "bad")
    assert breaker.state is S.OPEN


# -- stale results -------------------------------------------------------------------------


def test_a_call_admitted_while_closed_that_succeeds_after_the_trip_is_only_totalled() -> None:
    breaker, _ = make(failure_threshold=2)

    @breaker
    def slow_success() -> str:
        fail(breaker, 2)  # meanwhile, other calls trip the breaker
        return "late"

    assert slow_success() == "late"
    assert breaker.state is S.OPEN
    assert breaker.counts == Counts(0, 0, 0, 0, 0)
    assert breaker.totals.successes == 1


def test_a_stale_success_does_not_reset_the_next_generations_failures() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=1)

    def slow_success() -> str:
        trip(breaker)
        clock.advance(1)
        succeed(breaker)  # closed again, a new generation
        fail(breaker)
        return "late"

    assert breaker.call(slow_success) == "late"
    assert breaker.counts.consecutive_failures == 1
    fail(breaker)
    assert breaker.state is S.OPEN


def test_a_call_admitted_while_closed_that_fails_after_the_trip_is_only_totalled() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=1)

    @breaker
    def slow_failure() -> None:
        trip(breaker)
        clock.advance(1)
        assert breaker.state is S.HALF_OPEN
        raise Backend("late")

    with pytest.raises(Backend):
        slow_failure()
    assert breaker.state is S.HALF_OPEN  # a late failure does not reopen a half-open breaker
    assert breaker.counts.requests == 0
    assert breaker.totals.failures == 3


def test_a_stale_async_result_is_only_totalled() -> None:
    breaker, _ = make(failure_threshold=2)

    @breaker
    async def slow_success() -> str:
        fail(breaker, 2)
        return "late"

    async def slow_via_acall() -> str:
        breaker.reset()
        return "late"

    assert asyncio.run(slow_success()) == "late"
    assert breaker.state is S.OPEN
    assert breaker.counts.requests == 0
    breaker.reset()
    fail(breaker)
    assert asyncio.run(breaker.acall(slow_via_acall)) == "late"
    assert breaker.counts.requests == 0
    assert breaker.totals.successes == 2


def test_a_stale_permit_from_a_closed_generation_cannot_close_a_half_open_breaker() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=5)
    early = breaker.acquire()
    fail(breaker)
    clock.advance(5)
    assert breaker.state is S.HALF_OPEN
    breaker.record(early)
    assert breaker.state is S.HALF_OPEN
    assert breaker.counts.requests == 0
    assert breaker.totals.successes == 1


def test_a_stale_probe_of_an_earlier_half_open_period_does_not_count() -> None:
    breaker, clock = make(failure_threshold=1, half_open_max_calls=2, open_duration=1)
    open_then_wait(breaker, clock)
    old = breaker.acquire()
    breaker.record(breaker.acquire(), Backend())  # reopens at once: old is now stale
    clock.advance(1)
    first, second = breaker.acquire(), breaker.acquire()
    breaker.record(old, Backend())  # would reopen, if it counted
    assert breaker.state is S.HALF_OPEN
    breaker.record(first)
    breaker.record(second)
    assert breaker.state is S.CLOSED


def test_stale_results_when_ready_to_trip_sees_an_old_generation() -> None:
    breaker, clock = make(ready_to_trip=lambda counts: True, failure_threshold=None)
    store = breaker._store
    assert isinstance(store, MemoryBreakerStore)
    assert store.trip_if(store.generation + 1, clock.monotonic(), "late") is None
    breaker.force_closed()
    assert store.trip_if(store.generation, clock.monotonic(), "late") is None  # not plain closed


# -- manual control ------------------------------------------------------------------------


def test_force_open_rejects_forever_until_reset() -> None:
    breaker, clock = make()
    seen = record(breaker)
    breaker.force_open()
    breaker.force_open()  # idempotent, one event
    clock.advance(10**6)
    with pytest.raises(OpenCircuitError) as info:
        breaker.call(ok)
    assert info.value.state == "forced_open"
    assert breaker.state is S.FORCED_OPEN
    breaker.reset()
    assert breaker.call(ok) == "ok"
    assert changes(seen) == [("closed", "forced_open"), ("forced_open", "closed")]
    assert [e.reason for e in seen if isinstance(e, BreakerStateChanged)] == ["forced open", "reset"]
    assert seen[1] == CallRejected("backend", "breaker forced_open", None)


def test_force_closed_admits_everything_and_keeps_counting() -> None:
    breaker, _ = make(failure_threshold=1)
    breaker.force_closed()
    fail(breaker, 50)
    succeed(breaker)
    assert breaker.state is S.FORCED_CLOSED
    assert breaker.counts == Counts(51, 1, 50, 1, 0)
    breaker.force_open()
    assert breaker.state is S.FORCED_OPEN
    breaker.force_closed()
    breaker.reset()
    fail(breaker)
    assert breaker.state is S.OPEN


def test_reset_clears_counts_but_keeps_totals() -> None:
    breaker, _ = make(failure_threshold=3)
    seen = record(breaker)
    fail(breaker, 2)
    breaker.reset()  # already closed: a fresh generation, no event
    assert breaker.counts == Counts(0, 0, 0, 0, 0)
    assert breaker.totals.failures == 2
    assert seen == []
    fail(breaker, 2)
    assert breaker.state is S.CLOSED


def test_reset_and_force_from_open_and_half_open() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=10)
    seen = record(breaker)
    fail(breaker)
    breaker.reset()
    fail(breaker)
    clock.advance(10)
    assert breaker.state is S.HALF_OPEN
    breaker.force_closed()
    breaker.force_open()
    breaker.reset()
    fail(breaker)
    breaker.force_open()
    assert changes(seen) == [
        ("closed", "open"),
        ("open", "closed"),
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "forced_closed"),
        ("forced_closed", "forced_open"),
        ("forced_open", "closed"),
        ("closed", "open"),
        ("open", "forced_open"),
    ]


def test_illegal_manual_transitions_are_refused() -> None:
    breaker, clock = make()
    store = breaker._store
    assert isinstance(store, MemoryBreakerStore)
    with pytest.raises(ValueError, match="cannot move a breaker from closed to half_open by hand"):
        store.force(S.HALF_OPEN, clock.monotonic(), "by hand")
    breaker.force_open()
    with pytest.raises(ValueError, match="from forced_open to open"):
        store.force(S.OPEN, clock.monotonic(), "by hand")
    assert breaker.state is S.FORCED_OPEN


def test_every_transition_the_breaker_makes_is_in_the_table() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=1, half_open_max_duration=1)
    seen = record(breaker)
    fail(breaker)
    clock.advance(1)
    breaker.acquire()
    clock.advance(1)
    clock.advance(breaker.retry_after)
    succeed(breaker)
    breaker.force_open()
    breaker.force_closed()
    breaker.reset()
    pairs = changes(seen)
    assert len(pairs) == 8
    for old, new in pairs:
        assert BreakerState(new) in TRANSITIONS[BreakerState(old)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pairs))


# -- events ----------------------------------------------------------------------------------


def test_state_changes_and_rejections_are_announced() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=5)
    seen = record(breaker)
    fail(breaker, 2)
    with pytest.raises(OpenCircuitError):
        breaker.call(ok)
    clock.advance(5)
    succeed(breaker)
    assert seen == [
        BreakerStateChanged("backend", "closed", "open", "2 consecutive failures"),
        CallRejected("backend", "breaker open", 5.0),
        BreakerStateChanged("backend", "open", "half_open", "open duration elapsed"),
        BreakerStateChanged("backend", "half_open", "closed", "1 half-open probe(s) succeeded"),
    ]


def test_reading_the_state_announces_open_to_half_open() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=5)
    fail(breaker)
    seen = record(breaker)
    clock.advance(5)
    assert breaker.state is S.HALF_OPEN
    assert changes(seen) == [("open", "half_open")]
    assert breaker.state is S.HALF_OPEN
    assert len(seen) == 1


def test_on_state_change_receives_only_state_changes() -> None:
    got: list[BreakerStateChanged] = []
    breaker, _ = make(failure_threshold=1, on_state_change=got.append)
    fail(breaker)
    with pytest.raises(OpenCircuitError):
        breaker.call(ok)
    assert got == [BreakerStateChanged("backend", "closed", "open", "1 consecutive failures")]


def test_global_listeners_receive_breaker_events() -> None:
    seen: list[Event] = []
    with subscribe(seen.append):
        breaker, _ = make(failure_threshold=1)
        fail(breaker)
    breaker.reset()  # the subscription has ended
    assert changes(seen) == [("closed", "open")]


def test_a_listener_that_raises_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: BreakerStateChanged) -> None:
        raise RuntimeError("listener bug")

    breaker, _ = make(failure_threshold=1, on_state_change=broken)
    with caplog.at_level(logging.ERROR, logger="buttress.events"):
        fail(breaker)
    assert breaker.state is S.OPEN
    assert len(caplog.records) == 1


def test_no_event_objects_are_built_without_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def counting(cls: type[Event]) -> Callable[..., Event]:
        def build(*args: Any) -> Event:
            built.append(cls.__name__)
            return cls(*args)

        return build

    monkeypatch.setattr(classic, "BreakerStateChanged", counting(BreakerStateChanged))
    monkeypatch.setattr(classic, "CallRejected", counting(CallRejected))
    breaker, clock = make(failure_threshold=1, open_duration=1)
    fail(breaker)
    with pytest.raises(OpenCircuitError):
        breaker.call(ok)
    clock.advance(1)
    succeed(breaker)
    breaker.force_open()
    assert built == []
    breaker.events.subscribe(lambda event: None)
    breaker.reset()
    breaker.force_open()
    with pytest.raises(OpenCircuitError):
        breaker.call(ok)
    assert built == ["BreakerStateChanged", "BreakerStateChanged", "CallRejected"]


# -- totals and snapshot ---------------------------------------------------------------------


def test_totals_count_every_outcome_over_the_lifetime() -> None:
    breaker, clock = make(failure_threshold=2, half_open_max_calls=2, ignore_on=Ignored, open_duration=1)
    succeed(breaker, 3)
    fail(breaker, 1, Ignored())
    fail(breaker, 2)  # trip 1
    for _ in range(3):
        with pytest.raises(OpenCircuitError):
            breaker.call(ok)
    clock.advance(1)
    probe = breaker.acquire()
    succeed(breaker)  # probe 2 of 2, still half-open
    with pytest.raises(OpenCircuitError):
        breaker.call(ok)  # both slots are taken
    breaker.record(probe, Backend())  # trip 2
    assert breaker.totals == Totals(successes=4, failures=3, ignored=1, rejected=4, trips=2)


def test_snapshot_reads_everything_at_once() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=8)
    succeed(breaker)
    fail(breaker)
    clock.advance(3)
    snapshot = breaker.snapshot()
    assert snapshot == Snapshot(
        state=S.OPEN,
        counts=Counts(0, 0, 0, 0, 0),
        totals=Totals(successes=1, failures=1, ignored=0, rejected=0, trips=1),
        retry_after=5.0,
    )


# -- validation --------------------------------------------------------------------------------


def test_every_configuration_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(
            "payments",
            failure_threshold=0,
            failure_rate_threshold=1.5,
            slow_call_rate_threshold=0,
            slow_call_duration=-1,
            window_size=0,
            minimum_calls=0,
            reset_interval=-1,
            open_duration=-1,
            half_open_max_calls=0,
            half_open_max_duration=0,
        )
    error = info.value
    assert isinstance(error, ValueError)
    assert error.problems == (
        "failure_threshold must be an integer >= 1 (got 0)",
        "failure_rate_threshold must be in (0, 1] (got 1.5)",
        "slow_call_rate_threshold must be in (0, 1] (got 0)",
        "slow_call_duration must be > 0 (got -1)",
        "window_size must be an integer >= 1 (got 0)",
        "minimum_calls must be an integer >= 1 (got 0)",
        "reset_interval must be > 0 (got -1)",
        "open_duration must be >= 0 (got -1)",
        "half_open_max_calls must be an integer >= 1 (got 0)",
        "half_open_max_duration must be > 0 (got 0)",
    )
    assert str(error).startswith("invalid CircuitBreaker 'payments' configuration: failure_threshold")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"window_type": "sliding"}, "window_type must be 'count' or 'time' (got 'sliding')"),
        ({"window_size": 10.5}, "window_size must be an integer >= 1 (got 10.5)"),
        ({"window_type": "time", "window_size": float("inf")}, "window_size must be finite (got inf)"),
        ({"window_type": "time", "window_size": -2}, "window_size must be > 0 (got -2)"),
        (
            {"failure_rate_threshold": 0.5, "window_size": 10, "minimum_calls": 11},
            "minimum_calls must be <= window_size for a count window (got 11 > 10)",
        ),
        ({"open_duration": "soon"}, "open_duration must be seconds, a timedelta or a Backoff (got 'soon')"),
        ({"open_duration": float("inf")}, "open_duration must be finite (got inf)"),
        ({"open_duration": True}, "open_duration must be a number of seconds (got True)"),
        ({"failure_threshold": True}, "failure_threshold must be an integer >= 1 (got True)"),
        ({"slow_call_duration": float("nan")}, "slow_call_duration must not be NaN"),
        ({"reset_interval": float("inf")}, "reset_interval must be finite (got inf)"),
        (
            {"half_open_max_calls": 2, "half_open_success_threshold": 3},
            "half_open_success_threshold must be <= half_open_max_calls (got 3 > 2)",
        ),
        ({"half_open_success_threshold": 0}, "half_open_success_threshold must be an integer >= 1 (got 0)"),
        ({"half_open_max_duration": timedelta(0)}, "half_open_max_duration must be > 0 (got 0.0)"),
    ],
)
def test_each_configuration_problem_names_parameter_value_and_range(
    kwargs: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(**kwargs)
    assert info.value.problems == (problem,)
    assert str(info.value).startswith("invalid CircuitBreaker configuration: ")


def test_a_config_without_any_trip_rule_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        BreakerConfig.build(
            name="",
            failure_threshold=None,
            failure_rate_threshold=None,
            slow_call_rate_threshold=None,
            slow_call_duration=60,
            window_type="count",
            window_size=100,
            minimum_calls=None,
            ready_to_trip=None,
            reset_interval=None,
            open_duration=30,
            half_open_max_calls=1,
            half_open_success_threshold=None,
            half_open_max_duration=None,
        )
    assert "no trip rule" in info.value.problems[0]


def test_timedeltas_are_accepted_at_the_edges() -> None:
    breaker, _ = make(
        slow_call_rate_threshold=0.5,
        slow_call_duration=timedelta(milliseconds=250),
        window_type="time",
        window_size=timedelta(minutes=1),
        reset_interval=timedelta(seconds=90),
        open_duration=timedelta(seconds=5),
        half_open_max_duration=timedelta(seconds=2),
    )
    config = breaker.config
    assert (config.slow_call_duration, config.window_size, config.reset_interval) == (0.25, 60.0, 90.0)
    assert (config.open_duration, config.half_open_max_duration, config.window_type) == (5.0, 2.0, "time")
    assert config.uses_window
    assert not config.fast_closed


# -- the four ways of use ----------------------------------------------------------------------


def test_decorator_keeps_name_doc_and_signature() -> None:
    breaker, _ = make()

    @breaker
    def fetch(url: str, *, timeout: float = 1.0) -> str:
        """Fetch a URL."""
        return url

    @breaker
    async def afetch(url: str, retries: int = 2) -> str:
        """Fetch a URL, asynchronously."""
        return url

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a URL."
    assert str(inspect.signature(fetch)) == "(url: 'str', *, timeout: 'float' = 1.0) -> 'str'"
    assert afetch.__name__ == "afetch"
    assert afetch.__doc__ == "Fetch a URL, asynchronously."
    assert str(inspect.signature(afetch)) == "(url: 'str', retries: 'int' = 2) -> 'str'"
    assert inspect.iscoroutinefunction(afetch)
    assert not inspect.iscoroutinefunction(fetch)
    assert fetch("a", timeout=2) == "a"
    assert asyncio.run(afetch("b")) == "b"


def test_generator_functions_are_refused() -> None:
    breaker, _ = make()

    def numbers() -> Iterator[int]:
        yield 1

    async def anumbers() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match="cannot wrap the generator function"):
        breaker(numbers)
    with pytest.raises(TypeError, match="cannot wrap the generator function"):
        breaker(anumbers)


def test_decorated_sync_function_counts_and_rejects() -> None:
    breaker, _ = make(failure_threshold=2)
    runs: list[int] = []

    @breaker
    def work(n: int) -> int:
        runs.append(n)
        if n < 0:
            raise Backend("negative")
        return n * 2

    assert work(2) == 4
    for n in (-1, -2):
        with pytest.raises(Backend):
            work(n)
    with pytest.raises(OpenCircuitError):
        work(3)
    assert runs == [2, -1, -2]  # the rejected call never ran
    assert breaker.totals == Totals(successes=1, failures=2, ignored=0, rejected=1, trips=1)


def test_decorated_async_function_counts_rejects_and_recovers() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=1)
    runs: list[int] = []

    @breaker
    async def work(n: int) -> int:
        runs.append(n)
        await asyncio.sleep(0)
        if n < 0:
            raise Backend("negative")
        return n * 2

    async def scenario() -> None:
        assert await work(2) == 4
        for n in (-1, -2):
            with pytest.raises(Backend):
                await work(n)
        with pytest.raises(OpenCircuitError):
            await work(3)
        clock.advance(1)
        assert await work(4) == 8  # the half-open probe goes through the slow path

    asyncio.run(scenario())
    assert runs == [2, -1, -2, 4]
    assert breaker.state is S.CLOSED


def test_async_cancellation_is_ignored_and_propagates() -> None:
    breaker, _ = make(failure_threshold=1)

    @breaker
    async def hang() -> None:
        await asyncio.sleep(3600)

    async def cancelled(task: asyncio.Future[None]) -> bool:
        await asyncio.sleep(0)
        task.cancel()
        # Matched by name: under pytest-cov in this environment the CancelledError raised by the
        # task is a second copy of the class, which `except asyncio.CancelledError` misses.
        try:
            await task
        except BaseException as exc:
            return type(exc).__name__ == "CancelledError"
        return False

    async def scenario() -> None:
        assert await cancelled(asyncio.ensure_future(hang()))
        assert await cancelled(asyncio.ensure_future(breaker.acall(asyncio.sleep, 3600)))

    asyncio.run(scenario())
    assert breaker.state is S.CLOSED
    assert breaker.totals.ignored == 2


def test_call_and_acall_pass_arguments_and_results() -> None:
    breaker, _ = make(failure_threshold=1)

    def add(a: int, b: int = 0) -> int:
        return a + b

    async def aadd(a: int, b: int = 0) -> int:
        return a + b

    assert breaker.call(add, 1, b=2) == 3
    assert asyncio.run(breaker.acall(aadd, 3, b=4)) == 7

    async def broken() -> None:
        raise Backend("down")

    with pytest.raises(Backend):
        asyncio.run(breaker.acall(broken))
    with pytest.raises(OpenCircuitError):
        asyncio.run(breaker.acall(aadd, 1))
    assert breaker.totals == Totals(successes=2, failures=1, ignored=0, rejected=1, trips=1)


def test_calls_through_the_locked_path_of_a_windowed_breaker() -> None:
    breaker, _ = make(failure_rate_threshold=1.0, window_size=2)
    assert not breaker._store.fast

    @breaker
    def sync_ok() -> str:
        return "s"

    @breaker
    async def async_ok() -> str:
        return "a"

    async def async_boom() -> None:
        raise Backend

    assert sync_ok() == "s"
    assert asyncio.run(async_ok()) == "a"
    with pytest.raises(Backend):
        asyncio.run(breaker.acall(async_boom))
    fail(breaker)
    assert breaker.state is S.OPEN
    assert breaker.totals.successes == 2


def test_guard_with_and_async_with() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=1)
    with breaker.guard() as guard:
        assert guard is not None
    with pytest.raises(Backend), breaker.guard():
        raise Backend("inside")

    async def scenario() -> None:
        with pytest.raises(Backend):
            async with breaker.guard():
                raise Backend("inside")
        with pytest.raises(OpenCircuitError):
            async with breaker.guard():
                raise AssertionError("never runs")
        clock.advance(1)
        async with breaker.guard():
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert breaker.state is S.CLOSED
    assert breaker.totals == Totals(successes=2, failures=2, ignored=0, rejected=1, trips=1)


def test_guard_ignores_base_exceptions() -> None:
    breaker, _ = make(failure_threshold=1)
    with pytest.raises(Abort), breaker.guard():
        raise Abort
    assert breaker.state is S.CLOSED
    assert breaker.totals.ignored == 1


def test_acquire_and_record_two_step() -> None:
    breaker, _ = make(failure_threshold=2, ignore_on=Ignored)
    permit = breaker.acquire()
    assert permit == Permit(generation=0, probe=False)
    breaker.record(permit)
    breaker.record(breaker.acquire(), Backend())
    breaker.record(breaker.acquire(), Ignored())
    breaker.record(breaker.acquire(), Backend())
    assert breaker.state is S.OPEN
    with pytest.raises(OpenCircuitError) as info:
        breaker.acquire()
    assert info.value.retry_after == 30.0


# -- a store that is not the in-memory one ------------------------------------------------------


class DelegatingStore(BreakerStore):
    """A store kept elsewhere: the breaker must not use the in-memory fast path with it."""

    def __init__(self) -> None:
        self.inner = MemoryBreakerStore()
        self.calls: list[str] = []

    def bind(self, config: BreakerConfig) -> None:
        self.inner.bind(config)

    def acquire(self, now: float) -> tuple[Permit | Rejection, Transition | None]:
        self.calls.append("acquire")
        return self.inner.acquire(now)

    def record(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> tuple[Transition | None, Counts | None]:
        self.calls.append(f"record {outcome}")
        return self.inner.record(permit, outcome, slow, now)

    def trip_if(self, generation: int, now: float, reason: str) -> Transition | None:
        self.calls.append("trip_if")
        return self.inner.trip_if(generation, now, reason)

    def snapshot(self, now: float) -> tuple[Snapshot, Transition | None]:
        return self.inner.snapshot(now)

    def force(self, state: BreakerState, now: float, reason: str) -> Transition | None:
        return self.inner.force(state, now, reason)


def test_another_store_gets_every_call_through_acquire_and_record() -> None:
    store = DelegatingStore()
    breaker, _ = make(failure_threshold=2, ready_to_trip=lambda counts: False, store=store)
    assert store.fast is None

    @breaker
    def sync_ok() -> str:
        return "s"

    @breaker
    async def async_ok() -> str:
        return "a"

    assert sync_ok() == "s"
    assert asyncio.run(async_ok()) == "a"
    assert breaker.call(ok) == "ok"
    fail(breaker)
    assert store.calls == [
        "acquire",
        "record success",
        "acquire",
        "record success",
        "acquire",
        "record success",
        "acquire",
        "record failure",
    ]
    fail(breaker)
    assert breaker.state is S.OPEN


def test_the_fast_flag_follows_the_state() -> None:
    breaker, clock = make(failure_threshold=1, open_duration=1)
    store = breaker._store
    assert store.fast
    fail(breaker)
    assert not store.fast
    clock.advance(1)
    succeed(breaker)
    assert store.fast
    breaker.force_closed()
    assert not store.fast  # forced closed counts under the lock
    breaker.reset()
    assert store.fast


def test_decorating_a_method_and_a_partial() -> None:
    breaker, _ = make()

    class Client:
        @breaker
        def get(self, key: str) -> str:
            return key

    def add(a: int, b: int) -> int:
        return a + b

    assert Client().get("k") == "k"
    wrapped = breaker(functools.partial(add, 1))
    assert wrapped(2) == 3


def test_a_decorated_success_resets_the_consecutive_failures() -> None:
    breaker, _ = make(failure_threshold=2)

    @breaker
    def sync_work(fail_it: bool) -> str:
        if fail_it:
            raise Backend("down")
        return "ok"

    @breaker
    async def async_work(fail_it: bool) -> str:
        return sync_work.__wrapped__(fail_it)  # type: ignore[attr-defined,no-any-return]

    for work in (sync_work, lambda fail_it: asyncio.run(async_work(fail_it))):
        with pytest.raises(Backend):
            work(True)
        assert breaker.counts.consecutive_failures == 1
        assert work(False) == "ok"
        assert breaker.counts.consecutive_failures == 0
    assert breaker.state is S.CLOSED


def test_repr_of_a_breaker_without_a_consecutive_rule() -> None:
    breaker, _ = make(failure_rate_threshold=0.25, window_size=8, open_duration=1.5)
    assert repr(breaker) == "CircuitBreaker(name='backend', trips on failure rate >= 25%, open 1.5s)"


def test_decorated_functions_keep_their_parameters_on_the_fast_and_the_slow_path() -> None:
    breaker, clock = make(failure_threshold=2, open_duration=10, half_open_max_calls=1)

    @breaker
    def put(key: str, value: int = 1, /, *rest: int, fail: bool = False, **meta: str) -> Any:
        if fail:
            raise ValueError(key)
        return key, value, rest, meta

    @breaker
    async def aput(key: str, *, value: int = 1) -> tuple[str, int]:
        return key, value

    assert put("k", 2, 3, tag="x") == ("k", 2, (3,), {"tag": "x"})  # closed: the fast path
    assert asyncio.run(aput("a", value=5)) == ("a", 5)
    for _ in range(2):
        with pytest.raises(ValueError, match="k"):
            put("k", fail=True)
    with pytest.raises(OpenCircuitError):
        put("k")
    clock.advance(10)
    # half-open: the slow path gets the same arguments, packed
    assert put("k", 7, 8, 9, tag="y") == ("k", 7, (8, 9), {"tag": "y"})
    assert put("k") == ("k", 1, (), {})  # closed again
    assert [p.name for p in inspect.signature(put).parameters.values()] == [
        "key",
        "value",
        "rest",
        "fail",
        "meta",
    ]

"""Tests of buttress.resilience.backoff: exact schedules, STOP, clocks, clones, validation."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigurationError
from buttress.resilience.backoff import (
    STOP,
    Backoff,
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    Stop,
    StopType,
    Zero,
    with_cancellation,
    with_max_retries,
)
from buttress.testing import FakeClock

ALMOST_ONE = 0.999


def draw(backoff: Backoff, n: int) -> list[float | StopType]:
    return [backoff.next_backoff() for _ in range(n)]


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


def counting_random() -> tuple[Callable[[], float], list[int]]:
    """A random source that records how often it was called and returns 0.5."""
    calls: list[int] = []

    def rnd() -> float:
        calls.append(1)
        return 0.5

    return rnd, calls


def no_random() -> float:
    raise AssertionError("random must not be called")


class Recording:
    """A backoff that counts draws and returns them as delays."""

    __slots__ = ("draws", "resets")

    def __init__(self) -> None:
        self.draws = 0
        self.resets = 0

    def next_backoff(self) -> float | StopType:
        self.draws += 1
        return float(self.draws)

    def reset(self) -> None:
        self.resets += 1
        self.draws = 0

    def clone(self) -> Recording:
        return Recording()


class ExplodingClock(FakeClock):
    def monotonic(self) -> float:
        raise AssertionError("the clock must not be read")


# --- STOP and the trivial schedules -------------------------------------------------------------


def test_stop_is_a_single_member_enum_with_a_short_repr() -> None:
    assert STOP is StopType.STOP
    assert list(StopType) == [STOP]
    assert repr(STOP) == "STOP"


def test_zero_stop_and_constant_never_change_and_clone_to_themselves() -> None:
    zero, stop, constant = Zero(), Stop(), Constant(0.25)
    assert draw(zero, 3) == [0.0, 0.0, 0.0]
    assert draw(stop, 2) == [STOP, STOP]
    assert draw(constant, 3) == [0.25, 0.25, 0.25]
    for b in (zero, stop, constant):
        b.reset()
        assert b.clone() is b
        assert isinstance(b, Backoff)
    assert (repr(zero), repr(stop), repr(constant)) == ("Zero()", "Stop()", "Constant(interval=0.25)")


def test_constant_accepts_timedelta_and_int() -> None:
    assert Constant(timedelta(milliseconds=1500)).next_backoff() == 1.5
    value = Constant(2).next_backoff()
    assert value == 2.0
    assert type(value) is float


@pytest.mark.parametrize(
    ("interval", "fragment"),
    [
        (-1.0, "interval must be >= 0 (got -1.0)"),
        (math.nan, "interval must not be NaN"),
        (math.inf, "interval must be finite (got inf)"),
        ("1s", "interval must be a number of seconds (got '1s')"),
        (True, "got True"),
    ],
)
def test_constant_rejects_bad_intervals(interval: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Constant(interval)  # type: ignore[arg-type]
    assert fragment in str(info.value)


# --- Exponential ---------------------------------------------------------------------------------


def test_exponential_defaults_match_gaz() -> None:
    assert repr(Exponential()) == (
        "Exponential(initial=1.0, multiplier=2.0, max_interval=300.0, "
        "randomization_factor=0.5, max_elapsed=None)"
    )


def test_exponential_midpoint_random_gives_the_plain_intervals() -> None:
    b = Exponential(random=fixed(0.5))
    assert draw(b, 12) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0, 300.0]


def test_exponential_lowest_random_gives_the_lower_edge() -> None:
    b = Exponential(random=fixed(0.0))
    assert draw(b, 11) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 150.0, 150.0]


def test_exponential_high_random_is_clamped_to_max_interval() -> None:
    b = Exponential(random=fixed(ALMOST_ONE))
    got = draw(b, 11)
    expected = [c * 1.499 for c in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)] + [300.0] * 3
    assert got == pytest.approx(expected)
    assert got[8:] == [300.0, 300.0, 300.0]  # 256 * 1.499 would be 383.7: clamped, exactly


def test_exponential_with_cenkalti_defaults() -> None:
    b = Exponential(0.5, 1.5, 60.0, 0.5, random=fixed(0.5))
    assert draw(b, 4) == pytest.approx([0.5, 0.75, 1.125, 1.6875])


def test_exponential_without_randomization_never_calls_random() -> None:
    b = Exponential(initial=0.1, multiplier=3.0, max_interval=1.0, randomization_factor=0, random=no_random)
    assert draw(b, 5) == pytest.approx([0.1, 0.3, 0.9, 1.0, 1.0])


def test_exponential_full_randomization_spans_zero_to_double() -> None:
    assert draw(Exponential(4.0, randomization_factor=1.0, random=fixed(0.0)), 2) == [0.0, 0.0]
    assert draw(Exponential(4.0, randomization_factor=1.0, random=fixed(0.75)), 2) == [6.0, 12.0]


def test_exponential_initial_zero_stays_zero() -> None:
    assert draw(Exponential(initial=0.0, max_interval=0.0), 3) == [0.0, 0.0, 0.0]


def test_exponential_accepts_timedeltas() -> None:
    b = Exponential(
        timedelta(milliseconds=100), 2.0, timedelta(seconds=1), 0.0, timedelta(minutes=1), clock=FakeClock()
    )
    assert "initial=0.1" in repr(b)
    assert "max_interval=1.0" in repr(b)
    assert "max_elapsed=60.0" in repr(b)


@pytest.mark.parametrize(
    ("initial", "multiplier", "max_interval"),
    [(1.0, 1e308, 1e308), (1e300, 1e10, 1.7e308), (1.0, 2.0, 1.7976931348623157e308), (5e-324, 1.0, 5e-324)],
)
def test_exponential_never_overflows(initial: float, multiplier: float, max_interval: float) -> None:
    for rnd in (0.0, 0.5, ALMOST_ONE):
        b = Exponential(initial, multiplier, max_interval, 1.0, random=fixed(rnd))
        for _ in range(10_000):
            delay = b.next_backoff()
            assert isinstance(delay, float)
            assert math.isfinite(delay)
            assert 0.0 <= delay <= max_interval


def test_exponential_stops_when_elapsed_plus_next_would_exceed_max_elapsed() -> None:
    clock = FakeClock()
    b = Exponential(1.0, 2.0, 100.0, 0.0, max_elapsed=7.0, clock=clock)
    delays = []
    while (delay := b.next_backoff()) is not STOP:
        delays.append(delay)
        clock.sleep(delay)
    assert delays == [1.0, 2.0, 4.0]  # 7.0 + 8.0 > 7.0; 3.0 + 4.0 == 7.0 is still allowed
    assert clock.monotonic() == 7.0
    assert b.next_backoff() is STOP


def test_exponential_elapsed_counts_time_outside_the_backoff_too() -> None:
    clock = FakeClock(start=100.0)
    b = Exponential(1.0, 2.0, 100.0, 0.0, max_elapsed=10.0, clock=clock)
    clock.advance(9.5)  # a slow attempt
    assert b.next_backoff() is STOP


def test_exponential_reset_restarts_interval_and_elapsed_budget() -> None:
    clock = FakeClock()
    b = Exponential(1.0, 2.0, 100.0, 0.0, max_elapsed=5.0, clock=clock)
    assert draw(b, 2) == [1.0, 2.0]
    clock.advance(5.0)
    assert b.next_backoff() is STOP
    b.reset()
    assert draw(b, 2) == [1.0, 2.0]


def test_exponential_clone_budget_starts_when_cloned() -> None:
    clock = FakeClock()
    template = Exponential(1.0, 2.0, 100.0, 0.0, max_elapsed=5.0, clock=clock)
    clock.advance(100.0)
    assert template.next_backoff() is STOP
    clone = template.clone()
    assert clone.next_backoff() == 1.0
    clock.advance(3.5)
    assert clone.next_backoff() is STOP  # 3.5 s since the clone was made, + 2.0 > 5.0
    assert template.clone().next_backoff() == 1.0


def test_exponential_reads_no_clock_without_max_elapsed() -> None:
    b = Exponential(randomization_factor=0, clock=ExplodingClock())
    b.reset()
    assert draw(b, 2) == [1.0, 2.0]
    assert b.clone().next_backoff() == 1.0


def test_exponential_infinite_max_elapsed_never_stops() -> None:
    clock = FakeClock()
    b = Exponential(max_elapsed=math.inf, clock=clock)
    clock.advance(1e12)
    assert all(d is not STOP for d in draw(b, 100))


def test_exponential_clone_is_independent_and_shares_random_and_config() -> None:
    rnd, calls = counting_random()
    template = Exponential(2.0, 3.0, 50.0, 0.25, random=rnd)
    assert draw(template, 3) == [2.0, 6.0, 18.0]
    clone = template.clone()
    assert type(clone) is Exponential
    assert repr(clone) == repr(template)
    assert draw(clone, 2) == [2.0, 6.0]
    assert template.next_backoff() == 50.0  # the template's own state was not touched
    assert len(calls) == 6  # clone draws from the same random source
    again = template.clone()
    assert again is not clone
    assert again.next_backoff() == 2.0


def test_exponential_reset_returns_to_initial() -> None:
    b = Exponential(random=fixed(0.5))
    draw(b, 20)
    b.reset()
    assert draw(b, 3) == [1.0, 2.0, 4.0]


def test_exponential_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        Exponential(
            initial=-1.0,
            multiplier=0.5,
            max_interval=math.nan,
            randomization_factor=1.5,
            max_elapsed=0.0,
            clock=object(),  # type: ignore[arg-type]
            random=3,  # type: ignore[arg-type]
        )
    err = info.value
    assert isinstance(err, ValueError)
    assert len(err.problems) == 7
    text = str(err)
    assert text.startswith("invalid Exponential configuration: ")
    for fragment in (
        "initial must be >= 0 (got -1.0)",
        "max_interval must not be NaN",
        "multiplier must be >= 1 (got 0.5)",
        "randomization_factor must be in [0, 1] (got 1.5)",
        "max_elapsed must be > 0 (got 0.0)",
        "clock must provide monotonic()",
        "random must be a zero-argument callable",
        "(got 3)",
    ):
        assert fragment in text


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (
            {"initial": 10.0, "max_interval": 5.0},
            "initial must be <= max_interval (got initial=10.0, max_interval=5.0)",
        ),
        ({"multiplier": math.inf}, "multiplier must be finite (got inf)"),
        ({"multiplier": math.nan}, "multiplier must not be NaN"),
        ({"max_interval": math.inf}, "max_interval must be finite (got inf)"),
        ({"randomization_factor": -0.1}, "randomization_factor must be in [0, 1] (got -0.1)"),
        ({"max_elapsed": -3.0}, "max_elapsed must be > 0 (got -3.0)"),
        ({"initial": "1"}, "initial must be a number of seconds (got '1')"),
    ],
)
def test_exponential_validation_names_parameter_and_value(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Exponential(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert len(info.value.problems) == 1


def test_exponential_skips_the_ordering_check_when_a_bound_is_invalid() -> None:
    with pytest.raises(ConfigurationError) as info:
        Exponential(initial=10.0, max_interval=-5.0)
    assert info.value.problems == ("max_interval must be >= 0 (got -5.0)",)


# --- the AWS jitters -----------------------------------------------------------------------------


def test_jitter_defaults_and_repr() -> None:
    assert repr(FullJitter()) == "FullJitter(base=0.1, cap=20.0)"
    assert repr(EqualJitter()) == "EqualJitter(base=0.1, cap=20.0)"
    assert repr(DecorrelatedJitter(timedelta(seconds=1), 5)) == "DecorrelatedJitter(base=1.0, cap=5.0)"


def test_full_jitter_sequences() -> None:
    assert draw(FullJitter(1.0, 10.0, random=fixed(0.5)), 6) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert draw(FullJitter(1.0, 10.0, random=fixed(0.0)), 3) == [0.0, 0.0, 0.0]
    assert draw(FullJitter(1.0, 10.0, random=fixed(ALMOST_ONE)), 6) == pytest.approx(
        [0.999, 1.998, 3.996, 7.992, 9.99, 9.99]
    )


def test_equal_jitter_sequences() -> None:
    assert draw(EqualJitter(1.0, 10.0, random=fixed(0.0)), 6) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert draw(EqualJitter(1.0, 10.0, random=fixed(0.5)), 6) == [0.75, 1.5, 3.0, 6.0, 7.5, 7.5]
    assert draw(EqualJitter(1.0, 10.0, random=fixed(ALMOST_ONE)), 5) == pytest.approx(
        [0.9995, 1.999, 3.998, 7.996, 9.995]
    )


def test_decorrelated_jitter_sequences() -> None:
    half = DecorrelatedJitter(1.0, 10.0, random=fixed(0.5))
    assert draw(half, 7) == [2.0, 3.5, 5.75, 9.125, 10.0, 10.0, 10.0]
    assert draw(DecorrelatedJitter(1.0, 10.0, random=fixed(0.0)), 3) == [1.0, 1.0, 1.0]
    assert draw(DecorrelatedJitter(1.0, 10.0, random=fixed(ALMOST_ONE)), 3) == pytest.approx(
        [2.998, 8.986006, 10.0]
    )


@pytest.mark.parametrize("cls", [FullJitter, EqualJitter, DecorrelatedJitter])
def test_jitter_clone_and_reset(cls: type[FullJitter | EqualJitter | DecorrelatedJitter]) -> None:
    template = cls(1.0, 100.0, random=fixed(0.5))
    first = draw(template, 4)
    clone = template.clone()
    assert type(clone) is cls
    assert repr(clone) == repr(template)
    assert draw(clone, 4) == first
    assert template.next_backoff() != first[0]  # the template kept its own progress
    template.reset()
    assert draw(template, 4) == first


@pytest.mark.parametrize("cls", [FullJitter, EqualJitter, DecorrelatedJitter])
@pytest.mark.parametrize("rnd", [0.0, 0.5, ALMOST_ONE])
def test_jitter_never_overflows(cls: type[FullJitter | EqualJitter | DecorrelatedJitter], rnd: float) -> None:
    cap = 1.7976931348623157e308
    b = cls(1e-300, cap, random=fixed(rnd))
    for _ in range(10_000):
        delay = b.next_backoff()
        assert math.isfinite(delay)
        assert 0.0 <= delay <= cap


@pytest.mark.parametrize("cls", [FullJitter, EqualJitter, DecorrelatedJitter])
def test_jitter_validation(cls: type[FullJitter | EqualJitter | DecorrelatedJitter]) -> None:
    with pytest.raises(ConfigurationError) as info:
        cls(0.0, math.nan, random=None)  # type: ignore[arg-type]
    name = cls.__name__
    assert str(info.value).startswith(f"invalid {name} configuration: ")
    assert info.value.problems == (
        "base must be > 0 (got 0.0)",
        "cap must not be NaN",
        "random must be a zero-argument callable returning a float in [0, 1) (got None)",
    )
    with pytest.raises(ConfigurationError) as info:
        cls(2.0, 1.0)
    assert info.value.problems == ("cap must be >= base (got base=2.0, cap=1.0)",)
    with pytest.raises(ConfigurationError) as info:
        cls(1.0, math.inf)
    assert info.value.problems == ("cap must be finite (got inf)",)


# --- wrappers ------------------------------------------------------------------------------------


def test_with_max_retries_stops_after_n_delays() -> None:
    b = with_max_retries(Exponential(randomization_factor=0), 3)
    assert draw(b, 5) == [1.0, 2.0, 4.0, STOP, STOP]
    assert isinstance(b, Backoff)
    assert repr(b) == (
        "with_max_retries(Exponential(initial=1.0, multiplier=2.0, max_interval=300.0, "
        "randomization_factor=0.0, max_elapsed=None), 3)"
    )


def test_with_max_retries_zero_stops_without_drawing() -> None:
    inner = Recording()
    b = with_max_retries(inner, 0)
    assert b.next_backoff() is STOP
    assert inner.draws == 0


def test_with_max_retries_passes_inner_stop_through() -> None:
    assert draw(with_max_retries(Stop(), 5), 2) == [STOP, STOP]


def test_with_max_retries_reset_and_clone() -> None:
    inner = Recording()
    b = with_max_retries(inner, 2)
    assert draw(b, 3) == [1.0, 2.0, STOP]
    clone = b.clone()
    assert draw(clone, 3) == [1.0, 2.0, STOP]
    assert inner.draws == 2  # the clone drew from a clone of the inner backoff
    b.reset()
    assert inner.resets == 1
    assert draw(b, 3) == [1.0, 2.0, STOP]


@pytest.mark.parametrize(
    ("n", "fragment"),
    [
        (-1, "n must be an integer >= 0 (got -1)"),
        (1.5, "n must be an integer >= 0 (got 1.5)"),
        (True, "n must be an integer >= 0 (got True)"),
    ],
)
def test_with_max_retries_validation(n: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        with_max_retries(Zero(), n)  # type: ignore[arg-type]
    assert info.value.problems == (fragment,)


def test_with_max_retries_rejects_a_non_backoff_and_bad_n_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        with_max_retries(object(), -2)  # type: ignore[arg-type]
    assert len(info.value.problems) == 2
    assert "backoff must implement next_backoff(), reset() and clone()" in info.value.problems[0]


def test_with_cancellation_threading_event() -> None:
    token = threading.Event()
    inner = Recording()
    b = with_cancellation(inner, token)
    assert draw(b, 2) == [1.0, 2.0]
    token.set()
    assert draw(b, 2) == [STOP, STOP]
    assert inner.draws == 2  # a cancelled schedule does not advance the inner one
    b.reset()
    assert b.next_backoff() is STOP  # reset cannot un-cancel
    assert inner.resets == 1
    assert isinstance(b, Backoff)
    assert repr(b).startswith("with_cancellation(")


def test_with_cancellation_callable_and_clones_share_the_token() -> None:
    cancelled = [False]
    b = with_cancellation(Constant(1.0), lambda: cancelled[0])
    clone = b.clone()
    assert clone is not b
    assert (b.next_backoff(), clone.next_backoff()) == (1.0, 1.0)
    cancelled[0] = True
    assert (b.next_backoff(), clone.next_backoff()) == (STOP, STOP)


def test_with_cancellation_clone_clones_the_inner_schedule() -> None:
    b = with_cancellation(Exponential(randomization_factor=0), threading.Event())
    assert draw(b, 3) == [1.0, 2.0, 4.0]
    assert draw(b.clone(), 2) == [1.0, 2.0]
    assert b.next_backoff() == 8.0


def test_with_cancellation_asyncio_event() -> None:
    async def main() -> list[float | StopType]:
        token = asyncio.Event()
        b = with_cancellation(Constant(0.0), token)
        seen = [b.next_backoff()]

        async def cancel() -> None:
            token.set()

        await asyncio.create_task(cancel())
        seen.append(b.next_backoff())
        return seen

    assert asyncio.run(main()) == [0.0, STOP]


def test_with_cancellation_validation() -> None:
    with pytest.raises(ConfigurationError) as info:
        with_cancellation(None, 42)  # type: ignore[arg-type]
    assert info.value.problems == (
        "backoff must implement next_backoff(), reset() and clone() (got None)",
        "token must be a threading.Event, an asyncio.Event or a callable (got 42)",
    )


def test_wrappers_compose() -> None:
    token = threading.Event()
    b = with_cancellation(with_max_retries(Constant(1.0), 2), token)
    assert draw(b, 3) == [1.0, 1.0, STOP]
    fresh = b.clone()
    assert fresh.next_backoff() == 1.0
    token.set()
    assert fresh.next_backoff() is STOP


# --- sharing between threads ---------------------------------------------------------------------


def test_a_configured_backoff_can_be_shared_by_threads_through_clone() -> None:
    shared = Exponential(0.5, 1.5, 60.0, 0.5, random=fixed(0.5))
    expected = draw(shared.clone(), 200)
    jitter = FullJitter(0.1, 20.0)
    barrier = threading.Barrier(8)
    results: list[list[float | StopType]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(50):
                own = with_max_retries(shared, 200).clone()
                got = draw(own, 201)
                jittered = draw(jitter.clone(), 100)
                assert all(isinstance(d, float) and 0.0 <= d <= 20.0 for d in jittered)
                with lock:
                    results.append(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 400
    assert all(r == [*expected, STOP] for r in results)
    assert shared.next_backoff() == 0.5  # cloning never advanced the shared template


# --- properties ----------------------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
randoms = st.lists(unit | st.sampled_from([0.0, 0.5, 0.9999999999999999]), min_size=1, max_size=16)
attempts = st.integers(min_value=1, max_value=3000)
durations = st.floats(min_value=0.0, max_value=1.7e308, allow_nan=False, allow_infinity=False)


def cycling(values: list[float]) -> Callable[[], float]:
    return itertools.cycle(values).__next__


def assert_bounded(backoff: Backoff, n: int, cap: float, floor: float = 0.0) -> None:
    for _ in range(n):
        delay = backoff.next_backoff()
        assert isinstance(delay, float)
        assert math.isfinite(delay)
        assert floor <= delay <= cap


@settings(max_examples=150, deadline=None)
@given(
    max_interval=durations,
    initial_fraction=st.floats(min_value=0.0, max_value=1.0),
    multiplier=st.floats(min_value=1.0, max_value=1e308) | st.sampled_from([1.0, 1.5, 2.0, 1e300]),
    factor=st.floats(min_value=0.0, max_value=1.0),
    values=randoms,
    n=attempts,
)
def test_exponential_delays_are_always_finite_and_within_max_interval(
    max_interval: float,
    initial_fraction: float,
    multiplier: float,
    factor: float,
    values: list[float],
    n: int,
) -> None:
    b = Exponential(max_interval * initial_fraction, multiplier, max_interval, factor, random=cycling(values))
    assert_bounded(b, n, max_interval)
    assert_bounded(b.clone(), min(n, 50), max_interval)


@settings(max_examples=150, deadline=None)
@given(
    cls=st.sampled_from([FullJitter, EqualJitter, DecorrelatedJitter]),
    base=st.floats(min_value=5e-324, max_value=1e308),
    cap_factor=st.floats(min_value=1.0, max_value=1e308),
    values=randoms,
    n=attempts,
)
def test_jitter_delays_are_always_finite_and_within_cap(
    cls: type[FullJitter | EqualJitter | DecorrelatedJitter],
    base: float,
    cap_factor: float,
    values: list[float],
    n: int,
) -> None:
    cap = min(base * cap_factor, 1.7976931348623157e308)
    b = cls(base, cap, random=cycling(values))
    assert_bounded(b, n, cap, floor=base if cls is DecorrelatedJitter else 0.0)


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(min_value=0, max_value=500), extra=st.integers(min_value=1, max_value=10))
def test_with_max_retries_allows_exactly_n_delays(limit: int, extra: int) -> None:
    got = draw(with_max_retries(Zero(), limit), limit + extra)
    assert got == [0.0] * limit + [STOP] * extra

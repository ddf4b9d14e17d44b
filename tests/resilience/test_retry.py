"""Retry: stop rules, filters, Permanent, retry_after hints, budgets, events, the testing switch."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from buttress.errors import ConfigurationError, OpenCircuitError, RetryError
from buttress.events import Event, RetryBudgetExhausted, RetryExhausted, RetryScheduled
from buttress.resilience import (
    Constant,
    Exponential,
    Permanent,
    Retry,
    RetryBudget,
    Stop,
    Zero,
    aretry_call,
    attempts_of,
    retry,
    retry_call,
    with_max_retries,
)
from buttress.testing import FakeClock, disable_waits


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(
        self, failures: int, error: type[BaseException] = ConnectionError, value: Any = "ok"
    ) -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return self.value

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return self(*args, **kwargs)


def test_success_first_time_does_not_wait(clock: FakeClock) -> None:
    r = Retry(attempts=3, clock=clock)
    assert r.call(lambda: 42) == 42
    assert clock.sleeps == []


def test_retries_until_success_with_backoff_delays(clock: FakeClock) -> None:
    flaky = Flaky(2)
    r = Retry(attempts=5, backoff=Exponential(initial=1, multiplier=2, randomization_factor=0), clock=clock)
    assert r.call(flaky) == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [1.0, 2.0]


def test_last_exception_is_raised_unchanged_with_history(clock: FakeClock) -> None:
    flaky = Flaky(10)
    r = Retry(attempts=3, backoff=Constant(0.5), clock=clock)
    with pytest.raises(ConnectionError, match="failure 3") as info:
        r.call(flaky)
    assert flaky.calls == 3
    history = attempts_of(info.value)
    assert [a.number for a in history] == [1, 2, 3]
    assert [a.delay for a in history] == [0.5, 0.5, None]
    assert all(isinstance(a.error, ConnectionError) for a in history)
    assert attempts_of(ValueError()) == ()


def test_zero_delay_never_sleeps(clock: FakeClock) -> None:
    r = Retry(attempts=4, backoff=Zero(), clock=clock)
    assert r.call(Flaky(3)) == "ok"
    assert clock.sleeps == []


def test_non_retryable_errors_propagate_at_once(clock: FakeClock) -> None:
    flaky = Flaky(5, error=KeyError)
    r = Retry(attempts=5, on=ConnectionError, backoff=Zero(), clock=clock)
    with pytest.raises(KeyError):
        r.call(flaky)
    assert flaky.calls == 1


def test_predicate_over_exception(clock: FakeClock) -> None:
    flaky = Flaky(5, error=ValueError)
    r = Retry(attempts=5, on=lambda e: "failure 1" in str(e), backoff=Zero(), clock=clock)
    with pytest.raises(ValueError, match="failure 2"):
        r.call(flaky)
    assert flaky.calls == 2


def test_tuple_of_types(clock: FakeClock) -> None:
    r = Retry(attempts=3, on=(KeyError, ConnectionError), backoff=Zero(), clock=clock)
    assert r.call(Flaky(2, error=KeyError)) == "ok"


def test_base_exceptions_are_not_retried_by_default(clock: FakeClock) -> None:
    flaky = Flaky(3, error=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        Retry(attempts=5, backoff=Zero(), clock=clock).call(flaky)
    assert flaky.calls == 1


def test_permanent_stops_and_unwraps(clock: FakeClock) -> None:
    calls = []

    def op() -> None:
        calls.append(1)
        raise Permanent(LookupError("gone"))

    with pytest.raises(LookupError, match="gone"):
        Retry(attempts=5, backoff=Zero(), clock=clock).call(op)
    assert len(calls) == 1


def test_permanent_after_retryable_failure(clock: FakeClock) -> None:
    outcomes: list[BaseException] = [ConnectionError("x"), Permanent(ValueError("stop"))]

    def op() -> None:
        raise outcomes.pop(0)

    with pytest.raises(ValueError, match="stop"):
        Retry(attempts=5, backoff=Zero(), clock=clock).call(op)


def test_retry_if_result_then_retry_error(clock: FakeClock) -> None:
    results = iter([None, None, None])
    r = Retry(attempts=3, retry_if_result=lambda v: v is None, backoff=Constant(1), clock=clock, name="poll")
    with pytest.raises(RetryError) as info:
        r.call(lambda: next(results))
    err = info.value
    assert err.attempts == 3 and err.last_result is None and err.policy == "poll"
    assert "poll" in str(err) and "3 attempts" in str(err)
    assert len(err.history) == 3
    assert clock.sleeps == [1.0, 1.0]


def test_retry_if_result_accepts_eventually(clock: FakeClock) -> None:
    results = iter([0, 0, 7])
    r = Retry(attempts=5, retry_if_result=lambda v: v == 0, backoff=Zero(), clock=clock)
    assert r.call(lambda: next(results)) == 7


def test_mixed_errors_and_rejected_results(clock: FakeClock) -> None:
    outcomes: list[Any] = [ConnectionError("a"), None, "done"]

    def op() -> Any:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    r = Retry(attempts=5, retry_if_result=lambda v: v is None, backoff=Zero(), clock=clock)
    assert r.call(op) == "done"


def test_timeout_stops_before_a_wait_that_would_overrun(clock: FakeClock) -> None:
    flaky = Flaky(100)
    r = Retry(attempts=None, timeout=10, backoff=Constant(3), clock=clock)
    with pytest.raises(ConnectionError):
        r.call(flaky)
    # waits of 3 s: after 3 waits we are at 9 s; a 4th would end at 12 s > 10 s.
    assert clock.sleeps == [3.0, 3.0, 3.0]
    assert flaky.calls == 4


def test_backoff_stop_ends_retries(clock: FakeClock) -> None:
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        Retry(attempts=None, backoff=with_max_retries(Zero(), 2), clock=clock).call(flaky)
    assert flaky.calls == 3
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        Retry(attempts=None, backoff=Stop(), clock=clock).call(flaky)
    assert flaky.calls == 1


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def test_retry_after_hint_sets_delay_within_bounds(clock: FakeClock) -> None:
    hints: list[object] = [7.0, 500, 0.0001, float("nan"), "soon"]

    def op() -> str:
        if hints:
            raise Throttled(hints.pop(0))
        return "ok"

    r = Retry(attempts=10, backoff=Constant(2), retry_after_bounds=(0.5, 30), clock=clock)
    assert r.call(op) == "ok"
    # 7 kept, 500 clamped to 30, tiny raised to 0.5, NaN and non-numbers fall back to the backoff.
    assert clock.sleeps == [7.0, 30.0, 0.5, 2.0, 2.0]


def test_open_circuit_retry_after_is_honoured(clock: FakeClock) -> None:
    errors = [OpenCircuitError("open", policy="b", retry_after=4.0)]

    def op() -> str:
        if errors:
            raise errors.pop()
        return "ok"

    assert Retry(attempts=2, backoff=Constant(1), clock=clock).call(op) == "ok"
    assert clock.sleeps == [4.0]


def test_events_and_on_retry(clock: FakeClock) -> None:
    scheduled: list[RetryScheduled] = []
    events: list[Event] = []
    r = Retry("db", attempts=3, backoff=Constant(1), on_retry=scheduled.append, clock=clock)
    r.events.subscribe(events.append)
    with pytest.raises(ConnectionError):
        r.call(Flaky(5))
    assert [e.attempt for e in scheduled] == [1, 2]
    assert all(e.policy == "db" and e.delay == 1.0 for e in scheduled)
    exhausted = [e for e in events if isinstance(e, RetryExhausted)]
    assert len(exhausted) == 1 and exhausted[0].attempts == 3 and exhausted[0].reason == "attempts"


def test_budget_caps_retries(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0, ttl=10, clock=clock)
    events: list[Event] = []
    r = Retry(attempts=3, backoff=Zero(), budget=budget, clock=clock)
    r.events.subscribe(events.append)
    for _ in range(4):
        assert r.call(lambda: 1) == 1  # four deposits -> two retries allowed
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        r.call(flaky)  # deposit (5 requests -> 2.5 retries): two retries, then refused
    assert flaky.calls == 3
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        r.call(flaky)  # 6 requests -> 3 allowed, 2 spent: one more retry, then refused
    assert flaky.calls == 2
    assert any(isinstance(e, RetryBudgetExhausted) for e in events)
    assert any(isinstance(e, RetryExhausted) and e.reason == "budget" for e in events)


def test_budget_window_slides(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=0.2, ttl=10, clock=clock)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    assert budget.balance == 0
    clock.advance(10.5)
    assert budget.balance == 2
    assert budget.try_spend()


def test_budget_validation() -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryBudget(ratio=-1, min_per_second=-2, ttl=0)
    text = str(info.value)
    assert "ratio" in text and "min_per_second" in text and "ttl" in text
    with pytest.raises(ValueError, match="ratio must be <= 1000"):
        RetryBudget(ratio=5000)
    assert "ratio=0.2" in repr(RetryBudget())


def test_validation_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        Retry(attempts=0, timeout=-1, retry_after_bounds=(5, 1))
    problems = info.value.problems
    assert any("attempts" in p and "0" in p for p in problems)
    assert any("timeout" in p and "-1" in p for p in problems)
    with pytest.raises(ValueError, match="min <= max"):
        Retry(retry_after_bounds=(5, 1))
    with pytest.raises(ValueError, match="retry_after_bounds must be"):
        Retry(retry_after_bounds=(1,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backoff must be a Backoff"):
        Retry(backoff=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on must be"):
        Retry(on=5)  # type: ignore[arg-type]


def test_decorator_preserves_signature_and_kind() -> None:
    r = Retry(attempts=2, backoff=Zero())

    @r
    def add(a: int, b: int = 1) -> int:
        """Add."""
        return a + b

    @r
    async def aadd(a: int, b: int = 1) -> int:
        return a + b

    assert add(1, b=2) == 3 and add.__name__ == "add" and add.__doc__ == "Add."
    assert list(inspect.signature(add).parameters) == ["a", "b"]
    assert inspect.iscoroutinefunction(aadd)
    assert asyncio.run(aadd(2)) == 3


def test_generators_are_refused() -> None:
    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        Retry()(gen)
    with pytest.raises(TypeError, match="generator"):
        Retry()(agen)


def test_async_retry_paths(clock: FakeClock) -> None:
    flaky = Flaky(2)
    r = Retry(attempts=3, backoff=Constant(1), clock=clock)

    @r
    async def op() -> Any:
        return await flaky.acall()

    assert asyncio.run(op()) == "ok"
    assert clock.sleeps == [1.0, 1.0]
    flaky2 = Flaky(9)
    with pytest.raises(ConnectionError):
        asyncio.run(r.acall(flaky2.acall))
    assert flaky2.calls == 3
    results = iter([None, 5])
    r2 = Retry(attempts=3, retry_if_result=lambda v: v is None, backoff=Zero(), clock=clock)

    async def poll() -> Any:
        return next(results)

    assert asyncio.run(r2.acall(poll)) == 5


def test_async_decorator_with_budget_and_timeout_uses_chain(clock: FakeClock) -> None:
    flaky = Flaky(1)
    budget = RetryBudget(clock=clock)
    r = Retry(attempts=3, timeout=60, budget=budget, backoff=Zero(), clock=clock)

    @r
    async def op() -> Any:
        return await flaky.acall()

    @r
    def sync_op() -> Any:
        return "sync"

    assert asyncio.run(op()) == "ok"
    assert sync_op() == "sync"


def test_cancellation_is_not_retried(clock: FakeClock) -> None:
    calls = []

    async def op() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Retry(attempts=5, backoff=Zero(), clock=clock).acall(op))
    assert calls == [1]


def test_disable_waits_caps_attempts_and_skips_sleeps(clock: FakeClock) -> None:
    r = Retry(attempts=10, backoff=Constant(30), clock=clock)
    flaky = Flaky(100)
    with disable_waits(max_attempts=3), pytest.raises(ConnectionError):
        r.call(flaky)
    assert flaky.calls == 3 and clock.sleeps == []
    with disable_waits():
        assert r.call(Flaky(2)) == "ok"
    assert clock.sleeps == []
    unlimited = Retry(attempts=None, backoff=Constant(1), clock=clock)
    flaky = Flaky(100)
    with disable_waits(max_attempts=2), pytest.raises(ConnectionError):
        unlimited.call(flaky)
    assert flaky.calls == 2
    # restored afterwards
    assert r.call(Flaky(1)) == "ok" and clock.sleeps == [30.0]
    with pytest.raises(ValueError, match="max_attempts"), disable_waits(max_attempts=0):
        pass


def test_retry_call_and_notify(clock: FakeClock) -> None:
    notes: list[tuple[str, float]] = []
    flaky = Flaky(2)
    assert retry_call(flaky, Constant(2), notify=lambda e, d: notes.append((str(e), d)), clock=clock) == "ok"
    assert notes == [("failure 1", 2.0), ("failure 2", 2.0)]
    with pytest.raises(ConnectionError):
        retry_call(Flaky(5), with_max_retries(Zero(), 1), clock=clock)

    async def main() -> Any:
        return await aretry_call(Flaky(1).acall, Zero(), clock=clock)

    assert asyncio.run(main()) == "ok"


def test_retry_factory_and_repr() -> None:
    r = retry(attempts=7, name="x")
    assert isinstance(r, Retry) and r.attempts == 7 and r.name == "x"
    assert "attempts=7" in repr(r)


def test_default_backoff_is_gaz_exponential() -> None:
    r = Retry()
    assert isinstance(r.backoff, Exponential)
    assert r.attempts == 3


def test_one_retry_object_serves_concurrent_calls_independently() -> None:
    clock = FakeClock()
    r = Retry(attempts=4, backoff=Exponential(initial=1, randomization_factor=0), clock=clock)

    async def main() -> list[Any]:
        flakies = [Flaky(3) for _ in range(20)]
        return await asyncio.gather(*(r.acall(f.acall) for f in flakies))

    assert asyncio.run(main()) == ["ok"] * 20
    # every call got its own schedule: 1, 2, 4 each
    assert sorted(clock.sleeps) == sorted([1.0, 2.0, 4.0] * 20)


def test_retried_calls_get_the_same_arguments_on_every_attempt() -> None:
    calls: list[tuple[Any, ...]] = []
    r = Retry(attempts=3, backoff=Zero())
    default: list[int] = []

    @r
    def put(key: str, value: int = 1, /, *rest: int, sink: list[int] = default, **meta: str) -> str:
        calls.append((key, value, rest, sink, meta))
        if len(calls) < 3:
            raise ConnectionError("again")
        return "ok"

    @r
    async def aput(key: str, *, value: int = 1) -> str:
        calls.append((key, value))
        if len(calls) < 5:
            raise ConnectionError("again")
        return "aok"

    assert put("k", 2, 3, tag="x") == "ok"
    assert calls == [("k", 2, (3,), default, {"tag": "x"})] * 3
    assert calls[2][3] is default
    assert asyncio.run(aput("a", value=5)) == "aok"
    assert calls[3:] == [("a", 5)] * 2

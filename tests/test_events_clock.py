"""Events and listeners, the logging listener, clocks, validation helpers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from buttress import SYSTEM_CLOCK, Clock
from buttress._validation import Problems
from buttress.errors import ConfigurationError
from buttress.events import (
    BreakerStateChanged,
    CallRejected,
    Event,
    EventPublisher,
    RetryAttemptFailed,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
    TimeoutExpired,
    subscribe,
)
from buttress.resilience import CircuitBreaker
from buttress.telemetry import LoggingListener
from buttress.testing import FakeClock


def test_publisher_without_listeners_is_empty() -> None:
    publisher = EventPublisher()
    assert publisher.listeners == ()


def test_local_and_global_listeners() -> None:
    publisher = EventPublisher()
    local: list[Event] = []
    seen: list[Event] = []
    sub = publisher.subscribe(local.append)
    with subscribe(seen.append):
        later = EventPublisher()
        publisher.emit(CallRejected("a", "x", None))
        later.emit(CallRejected("b", "y", 1.0))
        assert later.listeners  # publishers made after subscribe() see the global listener
    publisher.emit(CallRejected("c", "z", None))
    assert [e.policy for e in seen] == ["a", "b"]
    assert [e.policy for e in local] == ["a", "c"]
    sub.cancel()
    sub.cancel()  # idempotent
    assert publisher.listeners == ()


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    publisher = EventPublisher()

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    good: list[Event] = []
    publisher.subscribe(broken)
    publisher.subscribe(good.append)
    with caplog.at_level(logging.ERROR, logger="buttress.events"):
        publisher.emit(TimeoutExpired("t", 1.0))
    assert len(good) == 1
    assert "listener" in caplog.text and "listener bug" in caplog.text


def test_events_are_frozen_and_slotted() -> None:
    event = BreakerStateChanged("b", "closed", "open", "5 consecutive failures")
    with pytest.raises(AttributeError):
        event.new = "closed"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_logging_listener_levels(caplog: pytest.LogCaptureFixture) -> None:
    listener = LoggingListener(logging.getLogger("test.buttress"))
    cases: list[tuple[Event, int, str]] = [
        (RetryScheduled("r", 1, 0.5, ConnectionError("reset")), logging.INFO, "retrying in 0.5s"),
        (RetryScheduled("r", 1, 0.5, None, None), logging.INFO, "result rejected"),
        (RetryExhausted("r", 3, "attempts", None), logging.ERROR, "giving up after 3 attempts"),
        (BreakerStateChanged("b", "closed", "open", "why"), logging.WARNING, "closed -> open"),
        (BreakerStateChanged("b", "half_open", "closed", "ok"), logging.INFO, "half_open -> closed"),
        (CallRejected("b", "breaker open", 2.0), logging.INFO, "retry after 2s"),
        (CallRejected("b", "throttled", None), logging.INFO, "rejected (throttled)"),
        (RetryBudgetExhausted("r", 2), logging.WARNING, "budget exhausted"),
        (TimeoutExpired("t", 1.0), logging.WARNING, "timed out after 1s"),
        (RetryAttemptFailed("r", 1, ValueError()), logging.INFO, "RetryAttemptFailed"),
    ]
    with caplog.at_level(logging.DEBUG, logger="test.buttress"):
        for event, _, _ in cases:
            listener(event)
    assert len(caplog.records) == len(cases)
    for record, (event, level, text) in zip(caplog.records, cases, strict=True):
        assert record.levelno == level
        assert text in record.getMessage()
        assert record.buttress_event is event  # type: ignore[attr-defined]


def test_logging_listener_on_a_real_breaker(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("payments", failure_threshold=1, clock=clock)
    breaker.events.subscribe(LoggingListener())
    with caplog.at_level(logging.INFO, logger="buttress"), pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    assert "payments: circuit breaker closed -> open (1 consecutive failures)" in caplog.text


def test_logging_listener_respects_level() -> None:
    logger = logging.getLogger("test.buttress.quiet")
    logger.setLevel(logging.ERROR)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Collect())
    listener = LoggingListener(logger)
    listener(CallRejected("b", "x", None))
    listener(RetryExhausted("r", 1, "attempts", None))
    assert [r.levelno for r in records] == [logging.ERROR]


def test_system_clock_is_a_clock() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    a = SYSTEM_CLOCK.monotonic()
    SYSTEM_CLOCK.sleep(0)
    asyncio.run(SYSTEM_CLOCK.asleep(0))
    assert SYSTEM_CLOCK.monotonic() >= a
    assert SYSTEM_CLOCK.time() > 1_600_000_000
    assert repr(SYSTEM_CLOCK) == "SystemClock()"


def test_fake_clock() -> None:
    clock = FakeClock(5.0, wall=100.0)
    assert isinstance(clock, Clock)
    clock.advance(2)
    assert (clock.monotonic(), clock.time()) == (7.0, 102.0)
    clock.sleep(3)
    asyncio.run(clock.asleep(1))
    assert clock.sleeps == [3, 1] and clock.monotonic() == 11.0
    clock.sleep(-1)  # negative sleeps are recorded, time does not go back
    assert clock.monotonic() == 11.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert "11.0" in repr(clock)


def test_problems_collects_everything() -> None:
    p = Problems("Thing")
    p.non_negative("a", -1)
    p.non_negative("b", float("inf"), allow_inf=False)
    p.positive("c", 0)
    p.positive("d", float("inf"), allow_inf=False)
    p.at_least("e", 1, 2)
    p.ratio("f", 1.5)
    p.ratio("g", 0, open_low=True)
    p.int_at_least("h", 1.5, 1)
    p.int_at_least("i", 0, 1)
    p.non_negative("j", "x")
    p.non_negative("k", float("nan"))
    p.non_negative("l", True)
    p.at_least("m", 5, 2)
    with pytest.raises(ConfigurationError) as info:
        p.raise_if_any()
    assert len(info.value.problems) == 12
    assert str(info.value).startswith("invalid Thing configuration: a must be >= 0 (got -1)")
    Problems("ok").raise_if_any()

"""The circuit breaker's vocabulary: states, the transition table, counts and configuration.

The transition table below is the single source of truth for which state changes are legal;
the store enforces it and the state diagram in ``docs/resilience/breaker.md`` is drawn from it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from buttress._validation import Problems, seconds

if TYPE_CHECKING:
    from buttress.resilience.backoff import Backoff


class BreakerState(enum.Enum):
    """Where a circuit breaker stands.

    - ``CLOSED``: calls go through; outcomes are counted against the trip rules.
    - ``OPEN``: calls are rejected with :class:`~buttress.errors.OpenCircuitError` until the
      open duration has passed, then the breaker turns ``HALF_OPEN``.
    - ``HALF_OPEN``: a fixed number of probe calls go through; enough successes close the
      breaker, too many failures open it again.
    - ``FORCED_OPEN`` / ``FORCED_CLOSED``: set by an operator (``force_open()`` /
      ``force_closed()``); they stay until ``reset()`` or another forced state.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"

    def __str__(self) -> str:
        return self.value


_S = BreakerState
TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    _S.CLOSED: frozenset({_S.OPEN, _S.FORCED_OPEN, _S.FORCED_CLOSED}),
    _S.OPEN: frozenset({_S.HALF_OPEN, _S.CLOSED, _S.FORCED_OPEN, _S.FORCED_CLOSED}),
    _S.HALF_OPEN: frozenset({_S.CLOSED, _S.OPEN, _S.FORCED_OPEN, _S.FORCED_CLOSED}),
    _S.FORCED_OPEN: frozenset({_S.CLOSED, _S.FORCED_CLOSED}),
    _S.FORCED_CLOSED: frozenset({_S.CLOSED, _S.FORCED_OPEN}),
}
"""Legal transitions: automatic ones (closed → open → half-open → closed/open) and manual ones
(``force_open``, ``force_closed``, ``reset`` → closed)."""


@dataclass(frozen=True, slots=True)
class Counts:
    """Outcomes counted in the current generation (since the last state change or interval).

    The same numbers as sony/gobreaker's ``Counts``. ``requests`` counts *completed* calls
    (successes plus failures); calls whose outcome is ignored are not counted.
    """

    requests: int
    total_successes: int
    total_failures: int
    consecutive_successes: int
    consecutive_failures: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Lifetime totals of a breaker, never reset by state changes (for metrics and tests)."""

    successes: int
    failures: int
    ignored: int
    rejected: int
    trips: int


ErrorPredicate = Callable[[BaseException], bool]
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Validated configuration of a :class:`~buttress.resilience.CircuitBreaker`.

    Built by the breaker's constructor; every problem is reported at once in one
    :class:`~buttress.errors.ConfigurationError`. See the constructor for the meaning of
    each field.
    """

    name: str
    failure_threshold: int | None
    failure_rate_threshold: float | None
    slow_call_rate_threshold: float | None
    slow_call_duration: float
    window_type: Literal["count", "time"]
    window_size: float
    minimum_calls: int
    ready_to_trip: Callable[[Counts], bool] | None
    reset_interval: float | None
    open_duration: float
    open_backoff: Backoff | None
    half_open_max_calls: int
    half_open_success_threshold: int
    half_open_max_duration: float | None

    @property
    def uses_window(self) -> bool:
        """True when a rate rule needs a window of outcomes."""
        return self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None

    @property
    def fast_closed(self) -> bool:
        """True when the closed state needs no clock and no lock on success (consecutive rule only)."""
        return not self.uses_window and self.reset_interval is None

    @classmethod
    def build(
        cls,
        *,
        name: str,
        failure_threshold: int | None,
        failure_rate_threshold: float | None,
        slow_call_rate_threshold: float | None,
        slow_call_duration: float | timedelta,
        window_type: str,
        window_size: float | timedelta,
        minimum_calls: int | None,
        ready_to_trip: Callable[[Counts], bool] | None,
        reset_interval: float | timedelta | None,
        open_duration: float | timedelta | Backoff,
        half_open_max_calls: int,
        half_open_success_threshold: int | None,
        half_open_max_duration: float | timedelta | None,
    ) -> BreakerConfig:
        """Validate every argument, then build the config (raises ``ConfigurationError``)."""
        p = Problems(f"CircuitBreaker {name!r}" if name else "CircuitBreaker")
        if failure_threshold is not None:
            p.int_at_least("failure_threshold", failure_threshold, 1)
        if failure_rate_threshold is not None:
            p.ratio("failure_rate_threshold", failure_rate_threshold, open_low=True)
        if slow_call_rate_threshold is not None:
            p.ratio("slow_call_rate_threshold", slow_call_rate_threshold, open_low=True)
        slow = seconds(slow_call_duration)
        p.positive("slow_call_duration", slow)
        if window_type not in ("count", "time"):
            p.add(f"window_type must be 'count' or 'time' (got {window_type!r})")
        size = seconds(window_size)
        if window_type == "count":
            p.int_at_least("window_size", size, 1)
        else:
            p.positive("window_size", size, allow_inf=False)
        if minimum_calls is None:
            minimum_calls = min(100, int(size)) if window_type == "count" and isinstance(size, int) else 100
        p.int_at_least("minimum_calls", minimum_calls, 1)
        counted = window_type == "count" and isinstance(size, int) and isinstance(minimum_calls, int)
        if counted and minimum_calls > size:
            p.add(f"minimum_calls must be <= window_size for a count window (got {minimum_calls} > {size})")
        no_rule = failure_threshold is None and failure_rate_threshold is None
        if no_rule and slow_call_rate_threshold is None and ready_to_trip is None:
            p.add(
                "no trip rule: set failure_threshold, failure_rate_threshold, "
                "slow_call_rate_threshold or ready_to_trip"
            )
        interval = None if reset_interval is None else seconds(reset_interval)
        if interval is not None:
            p.positive("reset_interval", interval, allow_inf=False)
        backoff: Backoff | None = None
        if isinstance(open_duration, int | float | timedelta):
            duration = seconds(open_duration)
            p.non_negative("open_duration", duration, allow_inf=False)
        elif callable(getattr(open_duration, "next_backoff", None)):
            backoff, duration = open_duration, 0.0
        else:
            p.add(f"open_duration must be seconds, a timedelta or a Backoff (got {open_duration!r})")
            duration = 0.0
        p.int_at_least("half_open_max_calls", half_open_max_calls, 1)
        threshold = (
            half_open_max_calls if half_open_success_threshold is None else half_open_success_threshold
        )
        if half_open_success_threshold is not None:  # the default follows half_open_max_calls
            p.int_at_least("half_open_success_threshold", threshold, 1)
        if (
            isinstance(threshold, int)
            and isinstance(half_open_max_calls, int)
            and threshold > half_open_max_calls
        ):
            p.add(
                "half_open_success_threshold must be <= half_open_max_calls "
                f"(got {threshold} > {half_open_max_calls})"
            )
        max_half = None if half_open_max_duration is None else seconds(half_open_max_duration)
        if max_half is not None:
            p.positive("half_open_max_duration", max_half, allow_inf=False)
        p.raise_if_any()
        return cls(
            name=name,
            failure_threshold=failure_threshold,
            failure_rate_threshold=failure_rate_threshold,
            slow_call_rate_threshold=slow_call_rate_threshold,
            slow_call_duration=slow,
            window_type="count" if window_type == "count" else "time",
            window_size=size,
            minimum_calls=minimum_calls,
            ready_to_trip=ready_to_trip,
            reset_interval=interval,
            open_duration=duration,
            open_backoff=backoff,
            half_open_max_calls=half_open_max_calls,
            half_open_success_threshold=threshold,
            half_open_max_duration=max_half,
        )


def failure_predicate(
    failure_on: ExceptionTypes, ignore_on: ExceptionTypes, is_failure: ErrorPredicate | None
) -> Callable[[BaseException], bool | None]:
    """Classify an exception: True = failure, False = success, None = ignored.

    Exceptions that are not :class:`Exception` (cancellation, ``KeyboardInterrupt``) are always
    ignored: they say nothing about the health of the dependency.
    """

    def classify(exc: BaseException) -> bool | None:
        if not isinstance(exc, Exception) or isinstance(exc, ignore_on):
            return None
        if is_failure is not None:
            return bool(is_failure(exc))
        return isinstance(exc, failure_on)

    return classify


def describe_rules(config: BreakerConfig) -> list[str]:
    """Human-readable trip rules, used in ``repr`` and in the reason of a trip."""
    rules: list[str] = []
    if config.failure_threshold is not None:
        rules.append(f"{config.failure_threshold} consecutive failures")
    if config.failure_rate_threshold is not None:
        rules.append(f"failure rate >= {config.failure_rate_threshold:.0%}")
    if config.slow_call_rate_threshold is not None:
        rules.append(f"slow-call rate >= {config.slow_call_rate_threshold:.0%}")
    if config.ready_to_trip is not None:
        rules.append("ready_to_trip(counts)")
    return rules


Outcome = Literal["success", "failure", "ignored"]
AnyCallable = Callable[..., Any]

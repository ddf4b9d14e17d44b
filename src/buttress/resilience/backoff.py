"""Backoff schedules: how long to wait before the next attempt, or :data:`STOP`.

A :class:`Backoff` is a tiny sans-IO state machine modelled on cenkalti/backoff: each
:meth:`~Backoff.next_backoff` call returns the seconds to wait before the next attempt (it never
sleeps) or :data:`STOP` to give up. A configured backoff is a template: :meth:`~Backoff.clone`
returns a fresh copy in its initial state without touching the original, so one configured
object can be shared by any number of threads and tasks, each drawing from its own clone.

Every schedule here returns only finite, non-negative floats no greater than its cap, however
many times it is asked and however large its multiplier: growth is clamped step by step, never
computed as ``base * 2 ** n``.
"""

from __future__ import annotations

import enum
import math
import random as _random
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Protocol, Self, cast, runtime_checkable

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    import asyncio
    import threading

__all__ = [
    "STOP",
    "Backoff",
    "Constant",
    "DecorrelatedJitter",
    "EqualJitter",
    "Exponential",
    "FullJitter",
    "Stop",
    "StopType",
    "Zero",
    "with_cancellation",
    "with_max_retries",
]


class StopType(enum.Enum):
    """The type of :data:`STOP`; a one-member enum so type checkers narrow ``float | StopType``."""

    STOP = "STOP"

    def __repr__(self) -> str:
        return "STOP"


STOP: Final = StopType.STOP
"""Returned by :meth:`Backoff.next_backoff` when no further attempt should be made."""

RandomSource = Callable[[], float]
"""A zero-argument callable returning a float in ``[0, 1)``, such as :func:`random.random`."""


@runtime_checkable
class Backoff(Protocol):
    """A schedule of waits between attempts.

    Implementations keep per-attempt state (the current interval, the attempt count) and are
    meant to be driven by one caller at a time. Share a configured backoff by calling
    :meth:`clone` once per caller; ``clone()`` never mutates the object it is called on.
    """

    def next_backoff(self) -> float | StopType:
        """Seconds to wait before the next attempt, or :data:`STOP` to give up."""
        ...

    def reset(self) -> None:
        """Return to the initial state, as if no delay had been drawn."""
        ...

    def clone(self) -> Backoff:
        """A fresh, independent copy with the same configuration, clock and random source,
        in its initial state."""
        ...


def _duration(
    p: Problems, name: str, value: float | timedelta, *, positive: bool = False, finite: bool = True
) -> float:
    """Validate a duration (float seconds or timedelta); return it as a float, 0.0 if invalid."""
    value = seconds(value)
    before = len(p.items)
    check = p.positive if positive else p.non_negative
    check(name, value, allow_inf=not finite)
    return float(value) if len(p.items) == before else 0.0


def _check_random(p: Problems, random: object) -> None:
    if not callable(random):
        p.add(f"random must be a zero-argument callable returning a float in [0, 1) (got {random!r})")


class Zero:
    """Retry at once: every delay is ``0.0`` and it never stops.

    Combine it with :func:`with_max_retries` to bound the attempts. It holds no state, so
    :meth:`clone` returns the same object.

    Example:
        >>> Zero().next_backoff()
        0.0
    """

    __slots__ = ()

    def next_backoff(self) -> float:
        """Always ``0.0``."""
        return 0.0

    def reset(self) -> None:
        """Nothing to reset."""

    def clone(self) -> Zero:
        """This object itself: it is immutable."""
        return self

    def __repr__(self) -> str:
        return "Zero()"


class Stop:
    """Never retry: :meth:`next_backoff` always returns :data:`STOP`.

    Example:
        >>> Stop().next_backoff()
        STOP
    """

    __slots__ = ()

    def next_backoff(self) -> StopType:
        """Always :data:`STOP`."""
        return STOP

    def reset(self) -> None:
        """Nothing to reset."""

    def clone(self) -> Stop:
        """This object itself: it is immutable."""
        return self

    def __repr__(self) -> str:
        return "Stop()"


class Constant:
    """Wait the same interval before every attempt, forever.

    Args:
        interval: seconds (or a :class:`~datetime.timedelta`) to wait; finite and >= 0.

    Raises:
        ConfigurationError: ``interval`` is negative, NaN, infinite or not a number.

    Example:
        >>> Constant(0.25).next_backoff()
        0.25
    """

    __slots__ = ("_interval",)

    def __init__(self, interval: float | timedelta) -> None:
        p = Problems("Constant")
        self._interval = _duration(p, "interval", interval)
        p.raise_if_any()

    def next_backoff(self) -> float:
        """The configured interval."""
        return self._interval

    def reset(self) -> None:
        """Nothing to reset."""

    def clone(self) -> Constant:
        """This object itself: it is immutable."""
        return self

    def __repr__(self) -> str:
        return f"Constant(interval={self._interval!r})"


class Exponential:
    """Exponentially growing, randomized intervals (cenkalti/backoff ``ExponentialBackOff``).

    Each call draws the delay uniformly from ``[cur - f*cur, cur + f*cur]`` (``f`` is
    ``randomization_factor``, ``cur`` starts at ``initial``), **clamps it to** ``max_interval``,
    then grows ``cur = min(cur * multiplier, max_interval)``. Unlike cenkalti, the randomized
    value never exceeds ``max_interval``: once ``cur`` reaches the cap, delays fall in
    ``[max_interval * (1 - f), max_interval]``.

    With ``max_elapsed`` set, the clock is read on every call and :data:`STOP` is returned once
    the time since creation, :meth:`reset` or :meth:`clone` plus the next delay would exceed it.

    Args:
        initial: the first interval in seconds; >= 0 and <= ``max_interval``.
        multiplier: growth per attempt; finite and >= 1.
        max_interval: the largest interval and the largest delay; finite and >= 0.
        randomization_factor: relative jitter ``f`` in [0, 1]; 0 gives exact intervals.
        max_elapsed: give up once this many seconds would have passed; ``None`` never stops.
        clock: where ``max_elapsed`` reads the time (``clock.monotonic()``).
        random: a source of floats in [0, 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> b = Exponential(initial=1.0, multiplier=2.0, max_interval=5.0, randomization_factor=0)
        >>> [b.next_backoff() for _ in range(4)]
        [1.0, 2.0, 4.0, 5.0]
    """

    __slots__ = (
        "_clock",
        "_current",
        "_high",
        "_initial",
        "_low",
        "_max_elapsed",
        "_max_interval",
        "_multiplier",
        "_random",
        "_start",
    )

    def __init__(
        self,
        initial: float | timedelta = 1.0,
        multiplier: float = 2.0,
        max_interval: float | timedelta = 300.0,
        randomization_factor: float = 0.5,
        max_elapsed: float | timedelta | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        random: RandomSource = _random.random,
    ) -> None:
        p = Problems("Exponential")
        initial_s = _duration(p, "initial", initial)
        max_s = _duration(p, "max_interval", max_interval)
        if not p.items and initial_s > max_s:
            p.add(f"initial must be <= max_interval (got initial={initial_s!r}, max_interval={max_s!r})")
        before = len(p.items)
        p.at_least("multiplier", multiplier, 1)
        if len(p.items) == before and math.isinf(multiplier):
            p.add(f"multiplier must be finite (got {multiplier!r})")
        before = len(p.items)
        p.ratio("randomization_factor", randomization_factor)
        factor = float(randomization_factor) if len(p.items) == before else 0.0
        elapsed_s = None
        if max_elapsed is not None:
            elapsed_s = _duration(p, "max_elapsed", max_elapsed, positive=True, finite=False)
        if not callable(getattr(clock, "monotonic", None)):
            p.add(f"clock must provide monotonic() (got {clock!r})")
        _check_random(p, random)
        p.raise_if_any()
        self._initial = initial_s
        self._multiplier = float(multiplier)
        self._max_interval = max_s
        self._low = 1.0 - factor
        self._high = 2.0 * factor
        self._max_elapsed = elapsed_s
        self._clock = clock
        self._random = random
        self._current = initial_s
        self._start = clock.monotonic() if elapsed_s is not None else 0.0

    def next_backoff(self) -> float | StopType:
        """The next randomized delay, or :data:`STOP` once ``max_elapsed`` would be exceeded."""
        cur = self._current
        cap = self._max_interval
        if self._high:
            delay = cur * (self._low + self._high * self._random())
            if delay > cap:
                delay = cap
        else:
            delay = cur
        # Floats overflow to inf rather than raising, and inf is not < cap, so this clamp
        # also absorbs overflow after any number of steps.
        grown = cur * self._multiplier
        self._current = grown if grown < cap else cap
        if self._max_elapsed is not None and (
            self._clock.monotonic() - self._start + delay > self._max_elapsed
        ):
            return STOP
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` and restart the elapsed-time budget."""
        self._current = self._initial
        self._start = self._clock.monotonic() if self._max_elapsed is not None else 0.0

    def clone(self) -> Exponential:
        """A fresh copy in its initial state; its elapsed-time budget starts now."""
        new = object.__new__(Exponential)
        new._initial = self._initial
        new._multiplier = self._multiplier
        new._max_interval = self._max_interval
        new._low = self._low
        new._high = self._high
        new._max_elapsed = self._max_elapsed
        new._clock = self._clock
        new._random = self._random
        new._current = self._initial
        new._start = self._clock.monotonic() if self._max_elapsed is not None else 0.0
        return new

    def __repr__(self) -> str:
        return (
            f"Exponential(initial={self._initial!r}, multiplier={self._multiplier!r}, "
            f"max_interval={self._max_interval!r}, randomization_factor={self._high / 2.0!r}, "
            f"max_elapsed={self._max_elapsed!r})"
        )


class _Jitter:
    """Shared configuration and validation of the three AWS-blog jitter schedules."""

    __slots__ = ("_base", "_cap", "_random", "_state")

    def __init__(
        self,
        base: float | timedelta = 0.1,
        cap: float | timedelta = 20.0,
        *,
        random: RandomSource = _random.random,
    ) -> None:
        p = Problems(type(self).__name__)
        base_s = _duration(p, "base", base, positive=True)
        cap_s = _duration(p, "cap", cap, positive=True)
        if not p.items and cap_s < base_s:
            p.add(f"cap must be >= base (got base={base_s!r}, cap={cap_s!r})")
        _check_random(p, random)
        p.raise_if_any()
        self._base = base_s
        self._cap = cap_s
        self._random = random
        self._state = base_s

    def reset(self) -> None:
        """Start again from the first attempt."""
        self._state = self._base

    def clone(self) -> Self:
        """A fresh copy that starts again from the first attempt."""
        new = object.__new__(type(self))
        new._base = self._base
        new._cap = self._cap
        new._random = self._random
        new._state = self._base
        return new

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base={self._base!r}, cap={self._cap!r})"


class FullJitter(_Jitter):
    """AWS "full jitter": attempt ``n`` (from 0) waits ``uniform(0, min(cap, base * 2**n))``.

    The widest spread of the three, so the best at de-synchronising a crowd of clients. The
    ceiling doubles step by step and is pinned at ``cap``, so it never overflows.

    Args:
        base: the ceiling of the first delay, in seconds; finite and > 0.
        cap: the largest ceiling, in seconds; finite and >= ``base``.
        random: a source of floats in [0, 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> b = FullJitter(base=1.0, cap=3.0, random=lambda: 0.5)
        >>> [b.next_backoff() for _ in range(4)]
        [0.5, 1.0, 1.5, 1.5]
    """

    __slots__ = ()

    def next_backoff(self) -> float:
        """A delay drawn uniformly from ``[0, min(cap, base * 2**n)]``."""
        ceiling = self._state
        doubled = ceiling * 2.0
        self._state = doubled if doubled < self._cap else self._cap
        return ceiling * self._random()


class EqualJitter(_Jitter):
    """AWS "equal jitter": with ``t = min(cap, base * 2**n)``, wait ``t/2 + uniform(0, t/2)``.

    Never waits less than half the exponential interval, so it keeps more of the backoff's
    pressure relief than :class:`FullJitter` at the cost of less spread.

    Args:
        base: the first interval ``t``, in seconds; finite and > 0.
        cap: the largest interval, in seconds; finite and >= ``base``.
        random: a source of floats in [0, 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> b = EqualJitter(base=1.0, cap=4.0, random=lambda: 0.0)
        >>> [b.next_backoff() for _ in range(4)]
        [0.5, 1.0, 2.0, 2.0]
    """

    __slots__ = ()

    def next_backoff(self) -> float:
        """A delay drawn uniformly from ``[t/2, t]``."""
        ceiling = self._state
        doubled = ceiling * 2.0
        self._state = doubled if doubled < self._cap else self._cap
        half = ceiling * 0.5
        return half + half * self._random()


class DecorrelatedJitter(_Jitter):
    """AWS "decorrelated jitter": ``sleep = min(cap, uniform(base, sleep * 3))``, from ``base``.

    Each delay depends on the previous one rather than on the attempt number, which spreads
    clients well and grows a little more gently than full jitter.

    Args:
        base: the first ``sleep`` and the smallest delay, in seconds; finite and > 0.
        cap: the largest delay, in seconds; finite and >= ``base``.
        random: a source of floats in [0, 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> b = DecorrelatedJitter(base=1.0, cap=10.0, random=lambda: 0.5)
        >>> [b.next_backoff() for _ in range(3)]
        [2.0, 3.5, 5.75]
    """

    __slots__ = ()

    def next_backoff(self) -> float:
        """A delay drawn uniformly from ``[base, previous * 3]``, clamped to ``cap``."""
        r = self._random()
        # base + r*(3*prev - base), arranged so that r == 0 cannot meet an infinite product
        # (0 * inf is NaN) when cap is near the float maximum.
        delay = self._base * (1.0 - r) + self._state * (3.0 * r)
        if delay > self._cap:
            delay = self._cap
        self._state = delay
        return delay


class _MaxRetries:
    """:func:`with_max_retries`'s wrapper; the count is per instance, so each clone counts anew."""

    __slots__ = ("_count", "_inner", "_limit")

    def __init__(self, inner: Backoff, limit: int) -> None:
        self._inner = inner
        self._limit = limit
        self._count = 0

    def next_backoff(self) -> float | StopType:
        if self._count >= self._limit:
            return STOP
        self._count += 1
        return self._inner.next_backoff()

    def reset(self) -> None:
        self._count = 0
        self._inner.reset()

    def clone(self) -> _MaxRetries:
        return _MaxRetries(self._inner.clone(), self._limit)

    def __repr__(self) -> str:
        return f"with_max_retries({self._inner!r}, {self._limit!r})"


def with_max_retries(backoff: Backoff, n: int) -> Backoff:
    """Bound ``backoff`` to ``n`` delays: the ``n + 1``-th call returns :data:`STOP`.

    ``n`` counts *retries* (delays), not attempts: ``n=3`` allows four attempts in all, and
    ``n=0`` stops at once. The wrapper's :meth:`~Backoff.clone` clones the inner backoff and
    restarts the count; :meth:`~Backoff.reset` resets both.

    Args:
        backoff: the schedule to bound.
        n: the number of delays allowed; an integer >= 0.

    Returns:
        A :class:`Backoff` that stops after ``n`` delays, or earlier if ``backoff`` does.

    Raises:
        ConfigurationError: ``n`` is not an integer >= 0 or ``backoff`` is not a Backoff.

    Example:
        >>> b = with_max_retries(Constant(1.0), 2)
        >>> [b.next_backoff() for _ in range(3)]
        [1.0, 1.0, STOP]
    """
    p = Problems("with_max_retries")
    if not isinstance(cast(object, backoff), Backoff):
        p.add(f"backoff must implement next_backoff(), reset() and clone() (got {backoff!r})")
    p.int_at_least("n", n, 0)
    p.raise_if_any()
    return _MaxRetries(backoff, n)


class _Cancellable:
    """:func:`with_cancellation`'s wrapper; clones share the token, so one ``set()`` stops all."""

    __slots__ = ("_inner", "_is_cancelled", "_token")

    def __init__(self, inner: Backoff, token: object, is_cancelled: Callable[[], bool]) -> None:
        self._inner = inner
        self._token = token
        self._is_cancelled = is_cancelled

    def next_backoff(self) -> float | StopType:
        if self._is_cancelled():
            return STOP
        return self._inner.next_backoff()

    def reset(self) -> None:
        self._inner.reset()

    def clone(self) -> _Cancellable:
        return _Cancellable(self._inner.clone(), self._token, self._is_cancelled)

    def __repr__(self) -> str:
        return f"with_cancellation({self._inner!r}, {self._token!r})"


def with_cancellation(
    backoff: Backoff, token: threading.Event | asyncio.Event | Callable[[], bool]
) -> Backoff:
    """Stop ``backoff`` once ``token`` is set.

    The token is checked before each delay is drawn, so a cancelled schedule does not advance
    the inner one. Clones share the token; :meth:`~Backoff.reset` resets the inner schedule but
    cannot un-set the token.

    Args:
        backoff: the schedule to make cancellable.
        token: a :class:`threading.Event`, an :class:`asyncio.Event` (anything with an
            ``is_set()`` method) or a zero-argument callable returning ``True`` when cancelled.

    Returns:
        A :class:`Backoff` that returns :data:`STOP` once the token is set.

    Raises:
        ConfigurationError: ``token`` is neither an event nor a callable, or ``backoff`` is
            not a Backoff.

    Example:
        >>> import threading
        >>> done = threading.Event()
        >>> b = with_cancellation(Constant(1.0), done)
        >>> b.next_backoff()
        1.0
        >>> done.set()
        >>> b.next_backoff()
        STOP
    """
    p = Problems("with_cancellation")
    if not isinstance(cast(object, backoff), Backoff):
        p.add(f"backoff must implement next_backoff(), reset() and clone() (got {backoff!r})")
    is_set = getattr(token, "is_set", None)
    check: Callable[[], bool] | None = is_set if callable(is_set) else token if callable(token) else None
    if check is None:
        p.add(f"token must be a threading.Event, an asyncio.Event or a callable (got {token!r})")
    p.raise_if_any()
    assert check is not None
    return _Cancellable(backoff, token, check)

"""Rolling-window statistics: a time-bucketed value window and the breaker's outcome windows.

Three windows live here, each a plain data structure with no background thread and no
internal lock; **callers serialise access** (the policies that own a window update it under
their own lock, so a second lock here would only add cost):

- :class:`RollingWindow`: ``size`` time buckets of ``bucket_duration`` seconds, aligned to
  bucket boundaries (a point added at ``now`` lands in bucket ``floor(now / bucket_duration)``),
  answering ``sum``/``count``/``min``/``max``/``avg``/``reduce`` over the live buckets. It
  follows the semantics of go-kratos/aegis's ``RollingCounter``.
- :class:`OutcomeRing`: the last ``size`` call outcomes (count-based breaker window).
- :class:`TimeOutcomeWindow`: the outcomes of the last ``duration`` seconds in aligned buckets
  (time-based breaker window).

Both outcome windows implement :class:`OutcomeWindow`: ``record(failed, slow, now)`` and
``totals(now) -> (calls, failures, slow_calls)``, with running totals so that neither
operation walks the window on the common path.

Time comes from the caller (``now``, monotonic seconds) or, for :class:`RollingWindow`, from an
injected clock. Time is expected not to go backwards; a point older than everything the window
still holds is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Protocol, TypeVar

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock

__all__ = ["Bucket", "OutcomeRing", "OutcomeWindow", "RollingWindow", "TimeOutcomeWindow"]

T = TypeVar("T")

_NEVER = -math.inf
"""Bucket index of a bucket that holds nothing: below every real index, so never live."""


def _check_duration(problems: Problems, name: str, value: object) -> None:
    problems.positive(name, value, allow_inf=False)


class Bucket:
    """One time slice of a :class:`RollingWindow`: the aggregate of the points added in it.

    A bucket keeps the sum, count, minimum and maximum of its points rather than the points
    themselves, so adding a point is O(1) and allocates nothing. Buckets are handed to
    :meth:`RollingWindow.reduce` callbacks; treat them as read-only and do not keep them
    after the callback returns (the window reuses them).

    Attributes:
        start: the time at which the bucket's slice begins (``index * bucket_duration``).
        sum: the sum of the bucket's points.
        count: how many points were added to the bucket.
        min: the smallest point (meaningful only when ``count > 0``).
        max: the largest point (meaningful only when ``count > 0``).
    """

    __slots__ = ("count", "index", "max", "min", "start", "sum")

    index: float
    """The absolute bucket number, ``floor(start / bucket_duration)`` (``-inf`` when unused)."""

    def __init__(self) -> None:
        self.index = _NEVER
        self.start = 0.0
        self.sum = 0.0
        self.count = 0
        self.min = 0.0
        self.max = 0.0

    @property
    def avg(self) -> float:
        """The mean of the bucket's points, ``0.0`` for an empty bucket."""
        return self.sum / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return f"Bucket(start={self.start!r}, sum={self.sum!r}, count={self.count!r})"


class RollingWindow:
    """A rolling window of ``size`` time buckets, each ``bucket_duration`` seconds long.

    Buckets are aligned to multiples of ``bucket_duration``: a point added at time ``now``
    belongs to bucket ``floor(now / bucket_duration)``, and a read at ``now`` sees the buckets
    ``current - size + 1 ... current``, i.e. the current (partial) bucket and the ``size - 1``
    before it. There is no background thread: a bucket is recycled when a later point needs
    its slot, and reads simply skip buckets that have expired.

    Cost: ``add`` is O(1) and allocates nothing beyond the float it stores; every read is
    O(``size``). The window is **not thread-safe**: callers that share one across threads
    hold their own lock around it.

    Args:
        size: the number of buckets (>= 1).
        bucket_duration: seconds per bucket (> 0, finite; a :class:`~datetime.timedelta` works).
        clock: where ``now`` comes from when a method is called without one.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> from buttress.testing import FakeClock
        >>> clock = FakeClock()
        >>> w = RollingWindow(size=3, bucket_duration=1.0, clock=clock)
        >>> w.add(2.0); w.add(5.0)
        >>> clock.advance(3.0)  # the bucket of t=0 has now left the window
        >>> w.add(1.0)
        >>> w.sum(), w.count()
        (1.0, 1)
    """

    __slots__ = ("_buckets", "_clock", "bucket_duration", "size")

    size: int
    """The number of buckets."""
    bucket_duration: float
    """Seconds per bucket."""

    def __init__(
        self, size: int = 10, bucket_duration: float | timedelta = 1.0, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        bucket_duration = seconds(bucket_duration)
        problems = Problems("RollingWindow")
        problems.int_at_least("size", size, 1)
        _check_duration(problems, "bucket_duration", bucket_duration)
        problems.raise_if_any()
        self.size = size
        self.bucket_duration = float(bucket_duration)
        self._clock = clock
        self._buckets = tuple(Bucket() for _ in range(size))

    def add(self, value: float, now: float | None = None) -> None:
        """Add the point ``value`` at time ``now`` (default: the clock's monotonic time).

        A point older than the bucket already occupying its slot is outside the window
        and is dropped.
        """
        if now is None:
            now = self._clock.monotonic()
        index = math.floor(now / self.bucket_duration)
        bucket = self._buckets[index % self.size]
        if bucket.index == index:
            bucket.sum += value
            bucket.count += 1
            if value < bucket.min:
                bucket.min = value
            elif value > bucket.max:
                bucket.max = value
        elif bucket.index < index:
            bucket.index = index
            bucket.start = index * self.bucket_duration
            bucket.sum = bucket.min = bucket.max = value
            bucket.count = 1

    def _live(self, now: float | None) -> Iterator[Bucket]:
        """The live, non-empty buckets at ``now``, oldest first."""
        if now is None:
            now = self._clock.monotonic()
        current = math.floor(now / self.bucket_duration)
        oldest = current - self.size
        buckets = self._buckets
        size = self.size
        # Slot (current + 1 + j) % size can only hold bucket current - size + 1 + j while it
        # is live, so walking the slots from there yields the buckets in time order.
        first = (current + 1) % size
        for offset in range(size):
            bucket = buckets[(first + offset) % size]
            if oldest < bucket.index <= current:
                yield bucket

    def reduce(self, fn: Callable[[Iterable[Bucket]], T], now: float | None = None) -> T:
        """Apply ``fn`` to the live buckets at ``now``, oldest first, and return its result.

        Empty and expired buckets are skipped, so ``fn`` may receive no bucket at all.

        Example:
            >>> w = RollingWindow(size=2, bucket_duration=1.0)
            >>> w.add(3.0, now=0.5); w.add(4.0, now=1.5)
            >>> w.reduce(lambda buckets: [b.sum for b in buckets], now=1.5)
            [3.0, 4.0]
        """
        return fn(self._live(now))

    def sum(self, now: float | None = None) -> float:
        """The sum of the points in the window (``0.0`` when empty)."""
        total = 0.0
        for bucket in self._live(now):
            total += bucket.sum
        return total

    def count(self, now: float | None = None) -> int:
        """How many points were added within the window."""
        total = 0
        for bucket in self._live(now):
            total += bucket.count
        return total

    def min(self, now: float | None = None) -> float:
        """The smallest point in the window, or ``0.0`` when the window is empty."""
        lows = [bucket.min for bucket in self._live(now)]
        return min(lows) if lows else 0.0

    def max(self, now: float | None = None) -> float:
        """The largest point in the window, or ``0.0`` when the window is empty."""
        highs = [bucket.max for bucket in self._live(now)]
        return max(highs) if highs else 0.0

    def avg(self, now: float | None = None) -> float:
        """The mean of the points in the window, or ``0.0`` when the window is empty."""
        total = 0.0
        count = 0
        for bucket in self._live(now):
            total += bucket.sum
            count += bucket.count
        return total / count if count else 0.0

    def reset(self) -> None:
        """Forget every point."""
        for bucket in self._buckets:
            bucket.index = _NEVER

    def __repr__(self) -> str:
        return f"RollingWindow(size={self.size!r}, bucket_duration={self.bucket_duration!r})"


class OutcomeWindow(Protocol):
    """What a circuit breaker needs from its window of recent call outcomes."""

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Count one finished call at ``now``."""
        ...

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow_calls)`` inside the window at ``now``."""
        ...

    def reset(self) -> None:
        """Forget every outcome."""
        ...


_FAILED = 1
_SLOW = 2


class OutcomeRing:
    """The outcomes of the last ``size`` calls: a count-based breaker window.

    Each outcome is one byte in a ring (bit 0 failed, bit 1 slow), and running totals are
    adjusted as the ring overwrites its oldest entry, so :meth:`record` and :meth:`totals`
    are O(1). ``now`` is accepted for interface compatibility with
    :class:`TimeOutcomeWindow` and ignored. Not thread-safe: callers lock.

    Args:
        size: how many of the most recent outcomes to keep (>= 1).

    Raises:
        ConfigurationError: if ``size`` is not an integer >= 1.

    Example:
        >>> ring = OutcomeRing(3)
        >>> for failed in (True, False, False, True):
        ...     ring.record(failed, False)
        >>> ring.totals()  # the first failure has been pushed out
        (3, 1, 0)
    """

    __slots__ = ("_calls", "_failures", "_flags", "_position", "_slow", "size")

    size: int
    """How many outcomes the ring holds."""

    def __init__(self, size: int) -> None:
        problems = Problems("OutcomeRing")
        problems.int_at_least("size", size, 1)
        problems.raise_if_any()
        self.size = size
        self._flags = bytearray(size)
        self._position = 0
        self._calls = 0
        self._failures = 0
        self._slow = 0

    def record(self, failed: bool, slow: bool, now: float = 0.0) -> None:
        """Count one call outcome, evicting the oldest once the ring is full."""
        position = self._position
        if self._calls == self.size:
            old = self._flags[position]
            if old & _FAILED:
                self._failures -= 1
            if old & _SLOW:
                self._slow -= 1
        else:
            self._calls += 1
        flags = 0
        if failed:
            flags = _FAILED
            self._failures += 1
        if slow:
            flags |= _SLOW
            self._slow += 1
        self._flags[position] = flags
        position += 1
        self._position = 0 if position == self.size else position

    def totals(self, now: float = 0.0) -> tuple[int, int, int]:
        """``(calls, failures, slow_calls)`` among the last ``size`` outcomes."""
        return self._calls, self._failures, self._slow

    def reset(self) -> None:
        """Forget every outcome."""
        self._position = self._calls = self._failures = self._slow = 0

    def __repr__(self) -> str:
        return f"OutcomeRing(size={self.size!r})"


class TimeOutcomeWindow:
    """The outcomes of the last ``duration`` seconds, in ``buckets`` aligned buckets.

    Buckets are ``duration / buckets`` seconds long and aligned like those of
    :class:`RollingWindow`: an outcome at ``now`` counts in bucket
    ``floor(now / bucket_duration)``, and the window at ``now`` covers the current bucket and
    the ``buckets - 1`` before it. Running totals are kept and corrected as buckets expire, so
    :meth:`record` and :meth:`totals` cost O(1) plus O(1) per bucket that expired since the
    previous call (at most ``buckets``). Time must not go backwards: an outcome older than the
    window is dropped, and ``totals`` at an earlier time answers for the latest time seen.
    Not thread-safe: callers lock.

    Args:
        duration: the window length in seconds (> 0, finite; a timedelta works).
        buckets: how many buckets the window is divided into (>= 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> window = TimeOutcomeWindow(10.0, buckets=10)
        >>> window.record(True, False, now=0.5)
        >>> window.record(False, True, now=9.5)
        >>> window.totals(now=9.9)
        (2, 1, 1)
        >>> window.totals(now=10.0)  # the bucket [0, 1) has expired
        (1, 0, 1)
    """

    __slots__ = (
        "_bucket_calls",
        "_bucket_failures",
        "_bucket_slow",
        "_calls",
        "_failures",
        "_head",
        "_slow",
        "_zeros",
        "bucket_duration",
        "buckets",
        "duration",
    )

    duration: float
    """The window length in seconds."""
    buckets: int
    """The number of buckets."""
    bucket_duration: float
    """Seconds per bucket, ``duration / buckets``."""

    def __init__(self, duration: float | timedelta, buckets: int = 10) -> None:
        duration = seconds(duration)
        problems = Problems("TimeOutcomeWindow")
        _check_duration(problems, "duration", duration)
        problems.int_at_least("buckets", buckets, 1)
        problems.raise_if_any()
        self.duration = float(duration)
        self.buckets = buckets
        self.bucket_duration = self.duration / buckets
        self._zeros = (0,) * buckets
        self._bucket_calls = [0] * buckets
        self._bucket_failures = [0] * buckets
        self._bucket_slow = [0] * buckets
        self._calls = 0
        self._failures = 0
        self._slow = 0
        # The newest bucket index seen; every slot holds one of head - buckets + 1 ... head.
        self._head: float = _NEVER

    def _clear(self) -> None:
        self._bucket_calls[:] = self._zeros
        self._bucket_failures[:] = self._zeros
        self._bucket_slow[:] = self._zeros
        self._calls = self._failures = self._slow = 0

    def _advance(self, index: int) -> None:
        """Move the newest bucket to ``index``, emptying the buckets that expire."""
        head = self._head
        count = self.buckets
        if index - head >= count:
            self._clear()
        else:
            calls, failures, slow = self._bucket_calls, self._bucket_failures, self._bucket_slow
            for expired in range(int(head) + 1, index + 1):
                slot = expired % count
                self._calls -= calls[slot]
                self._failures -= failures[slot]
                self._slow -= slow[slot]
                calls[slot] = failures[slot] = slow[slot] = 0
        self._head = index

    def record(self, failed: bool, slow: bool, now: float) -> None:
        """Count one call outcome at ``now``."""
        index = math.floor(now / self.bucket_duration)
        if index > self._head:
            self._advance(index)
        elif index <= self._head - self.buckets:
            return
        slot = index % self.buckets
        self._bucket_calls[slot] += 1
        self._calls += 1
        if failed:
            self._bucket_failures[slot] += 1
            self._failures += 1
        if slow:
            self._bucket_slow[slot] += 1
            self._slow += 1

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow_calls)`` recorded within the window at ``now``."""
        index = math.floor(now / self.bucket_duration)
        if index > self._head:
            self._advance(index)
        return self._calls, self._failures, self._slow

    def reset(self) -> None:
        """Forget every outcome."""
        self._clear()
        self._head = _NEVER

    def __repr__(self) -> str:
        return f"TimeOutcomeWindow(duration={self.duration!r}, buckets={self.buckets!r})"

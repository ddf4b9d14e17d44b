"""A deterministic clock for tests."""

from __future__ import annotations

import asyncio
import threading


class FakeClock:
    """A :class:`~buttress.clock.Clock` whose time moves only when told to.

    ``sleep()`` and ``asleep()`` do not wait: they record the requested duration in
    :attr:`sleeps` and advance the clock by it, so a retry with a 30 s backoff or a breaker
    that stays open for a minute runs in microseconds. ``asleep()`` still yields to the event
    loop once, so other tasks run in between as they would with a real sleep.

    Args:
        start: the initial monotonic reading.
        wall: the initial wall-clock reading (seconds since the epoch).

    Example:
        >>> clock = FakeClock()
        >>> clock.advance(30)
        >>> clock.monotonic()
        30.0
    """

    __slots__ = ("_lock", "_monotonic", "_wall", "sleeps")

    def __init__(self, start: float = 0.0, *, wall: float = 1_767_225_600.0) -> None:
        self._lock = threading.Lock()
        self._monotonic = float(start)
        self._wall = float(wall)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The current fake monotonic time."""
        return self._monotonic

    def time(self) -> float:
        """The current fake wall time; it advances together with :meth:`monotonic`."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError(f"FakeClock cannot go backwards (advance({seconds!r}))")
        with self._lock:
            self._monotonic += seconds
            self._wall += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time by ``seconds`` at once."""
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        """Record the sleep, advance time by ``seconds`` and yield to the event loop once."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._monotonic!r})"

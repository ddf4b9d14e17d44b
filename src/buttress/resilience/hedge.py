"""Hedged requests (asyncio): when a call is slow, start another and take whichever answers first.

Tail latency is often one slow replica, one full queue, one GC pause. A hedge waits a little
(a fixed delay, or the latency percentile of recent calls, so only the slowest few per cent are
hedged), then starts another attempt of the same call beside the first; the first success wins
and the rest are cancelled. It is "The Tail at Scale" (Dean and Barroso) and Polly's hedging
strategy. Hedge only idempotent calls, and give the policy a
:class:`~buttress.resilience.RetryBudget` so that a slow dependency does not see its load doubled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.events import HedgeStarted
from buttress.resilience._policy import AsyncLink, Policy, SyncLink
from buttress.resilience.budget import RetryBudget

__all__ = ["Hedge", "LatencyWindow", "close_result"]

_log = logging.getLogger("buttress.resilience.hedge")

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]

# An attempt is a list [task, started, (fn, args, kwargs)].
_TASK, _STARTED, _CALL = 0, 1, 2
_TIMER: Any = object()
"""What the wake-up future receives when the hedge delay ran out."""
_background: set[asyncio.Task[Any]] = set()
"""Closing tasks of losers' results: the event loop only keeps weak references to tasks."""


class LatencyWindow:
    """The latencies of the last ``size`` calls, and a percentile of them.

    The percentile is recomputed (a sort of ``size`` floats) at most once every
    ``size // 8`` new samples, so asking for it on every call is cheap. Not thread-safe; a
    :class:`Hedge` is used from event loops, which serialise it.

    Args:
        size: how many recent latencies to keep (>= 1).

    Example:
        >>> window = LatencyWindow(100)
        >>> for ms in range(1, 101):
        ...     window.add(ms / 1000)
        >>> window.percentile(0.95)
        0.095
    """

    __slots__ = ("_cache", "_samples", "_stale", "_step")

    def __init__(self, size: int = 128) -> None:
        p = Problems("LatencyWindow")
        p.int_at_least("size", size, 1)
        p.raise_if_any()
        self._samples: deque[float] = deque(maxlen=size)
        self._step = max(1, size // 8)
        self._stale = 0
        self._cache: dict[float, float] = {}

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, latency: float) -> None:
        """Add one latency in seconds."""
        self._samples.append(latency)
        self._stale += 1
        if self._stale >= self._step:
            self._cache.clear()

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0 < q <= 1, nearest rank) of the kept latencies; 0.0 when empty."""
        cached = self._cache.get(q)
        if cached is not None:
            return cached
        ordered = sorted(self._samples)
        if not ordered:
            return 0.0
        value = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
        if not self._cache:
            self._stale = 0
        self._cache[q] = value
        return value


def close_result(result: object) -> None:
    """Release a result nobody will read: call its ``aclose()`` (scheduled) or ``close()``.

    Used on the results of losing hedged attempts (an HTTP response, a cursor, a stream).
    Errors while closing are logged, never raised.
    """
    aclose = getattr(result, "aclose", None)
    if callable(aclose):
        try:
            closing = aclose()
        except Exception:
            _log.exception("closing the result %r of a losing attempt failed", result)
            return
        if inspect.isawaitable(closing):
            task = asyncio.ensure_future(closing)
            _background.add(task)
            task.add_done_callback(_closed)
        return
    close = getattr(result, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            _log.exception("closing the result %r of a losing attempt failed", result)


def _closed(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        _log.error("closing a losing attempt's result failed", exc_info=task.exception())


def _discard(task: asyncio.Task[Any]) -> None:
    """Done callback of a losing attempt: retrieve its error, close its result."""
    _background.discard(task)
    if task.cancelled():
        return
    if task.exception() is None:
        close_result(task.result())


class Hedge(Policy):
    """Start up to ``max_hedges`` extra attempts of a slow async call; the first success wins.

    The first attempt starts at once. If it has not finished after the hedge delay, a second
    starts beside it, and so on, one per delay, up to ``1 + max_hedges`` attempts. An attempt
    that fails with an error in ``on`` starts the next hedge at once (there is no point
    waiting). The first attempt to *succeed* wins: the others are cancelled, and a result
    one of them still produces is closed (``aclose()`` or ``close()``, when it has one). When
    every attempt fails, the last error is raised. An error outside ``on`` is raised at once.
    The caller's cancellation cancels every attempt.

    The delay is ``delay`` seconds, or, with ``percentile``, that percentile of the latencies
    of recent successful attempts (``delay`` until ``min_samples`` are known). Each hedge
    spends one token of ``budget`` (each call deposits one), so hedges stop when most calls
    are slow, which is when extra load hurts most. Attempts run as tasks, with a copy of the
    caller's context (its :class:`~buttress.resilience.Deadline` included).

    Only coroutine functions can be hedged; wrapping a sync function raises :class:`TypeError`.

    Args:
        delay: seconds before each hedge (>= 0), or the default delay while ``percentile`` has
            too few samples.
        max_hedges: extra attempts allowed per call (>= 1).
        percentile: hedge after this quantile of recent latencies, in (0, 1) (e.g. 0.95).
        window: how many recent latencies the percentile is taken over.
        min_samples: latencies needed before the percentile is used.
        on: exception types that count as a failed attempt (and start the next hedge).
        budget: a shared :class:`~buttress.resilience.RetryBudget` hedges spend from.
        name: identifies the policy in errors and events.
        clock: measures latencies; the delay itself is timed by the event loop.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> import asyncio
        >>> calls = []
        >>> @Hedge(delay=0.001, max_hedges=1)
        ... async def lookup() -> str:
        ...     calls.append(1)
        ...     if len(calls) == 1:
        ...         await asyncio.sleep(10)  # the first replica hangs
        ...     return "fast replica"
        >>> asyncio.run(lookup()), len(calls)
        ('fast replica', 2)
    """

    __slots__ = ("_now", "_window", "budget", "delay", "max_hedges", "min_samples", "on", "percentile")

    def __init__(
        self,
        delay: float | timedelta = 0.05,
        *,
        max_hedges: int = 1,
        percentile: float | None = None,
        window: int = 128,
        min_samples: int = 20,
        on: ExceptionTypes = Exception,
        budget: RetryBudget | None = None,
        name: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        wait = seconds(delay)
        p = Problems(f"Hedge {name!r}" if name else "Hedge")
        p.non_negative("delay", wait, allow_inf=False)
        p.int_at_least("max_hedges", max_hedges, 1)
        if percentile is not None and p._is_number("percentile", percentile) and not 0 < percentile < 1:
            p.add(f"percentile must be in (0, 1) (got {percentile!r})")
        p.int_at_least("window", window, 1)
        p.int_at_least("min_samples", min_samples, 1)
        candidate: object = on
        if not (
            (isinstance(candidate, type) and issubclass(candidate, BaseException))
            or (isinstance(candidate, tuple) and all(isinstance(t, type) for t in candidate))
        ):
            p.add(f"on must be an exception type or a tuple of them (got {on!r})")
        spender: object = budget
        if spender is not None and not isinstance(spender, RetryBudget):
            p.add(f"budget must be a RetryBudget (got {budget!r})")
        p.raise_if_any()
        self.delay = float(wait)
        self.max_hedges = max_hedges
        self.percentile = percentile
        self.min_samples = min_samples
        self.on = on
        self.budget = budget
        self._window = LatencyWindow(window) if percentile is not None else None
        self._now = clock.monotonic
        self._compose()

    def current_delay(self) -> float:
        """The hedge delay a call starting now would use."""
        window = self._window
        if window is None or len(window) < self.min_samples:
            return self.delay
        assert self.percentile is not None
        return window.percentile(self.percentile)

    def _requires_async(self) -> bool:
        return True

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        def refuse(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(f"Hedge runs attempts side by side as asyncio tasks; {name} is a sync function")

        return refuse

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        on = self.on
        budget = self.budget
        now = self._now
        events = self.events
        name = self.name
        max_hedges = self.max_hedges
        window = self._window

        async def attempt(
            entry: list[Any], done: deque[list[Any]], wake: list[asyncio.Future[Any] | None]
        ) -> Any:
            # The attempt wakes the caller itself as it ends: a done callback would cost the
            # caller one more turn of the event loop on every call.
            try:
                return await nxt(*entry[_CALL])
            finally:
                done.append(entry)
                future = wake[0]
                if future is not None and not future.done():
                    future.set_result(None)

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            loop = asyncio.get_running_loop()
            if budget is not None:
                budget.deposit()
            began = now()
            delay = self.current_delay()
            call = (fn, args, kwargs)
            done: deque[list[Any]] = deque()
            wake: list[asyncio.Future[Any] | None] = [None]
            running: list[list[Any]] = []

            def start(reason: str | None) -> None:
                entry: list[Any] = [None, now(), call]
                entry[_TASK] = loop.create_task(attempt(entry, done, wake))
                running.append(entry)
                if reason is not None and events.listeners:
                    events.emit(HedgeStarted(name, len(running) + hedged, now() - began, reason))

            hedged = 0  # attempts that already ended, for the attempt numbers in events
            start(None)
            hedges = max_hedges
            error: BaseException | None = None
            try:
                while True:
                    if not done:
                        future = wake[0] = loop.create_future()
                        timer = loop.call_later(delay, _fire, future) if hedges else None
                        try:
                            await future
                        finally:
                            wake[0] = None
                            if timer is not None:
                                timer.cancel()
                        if not done:  # the delay ran out with every attempt still running
                            if budget is None or budget.try_spend():
                                hedges -= 1
                                start("delay")
                            else:
                                hedges = 0
                            continue
                    entry = done.popleft()
                    running.remove(entry)
                    hedged += 1
                    task = entry[_TASK]
                    if task.cancelled():  # pragma: no cover - nobody else holds our tasks
                        error = asyncio.CancelledError()
                    else:
                        error = task.exception()
                        if error is None:
                            if window is not None:
                                window.add(now() - entry[_STARTED])
                            return task.result()
                        if not isinstance(error, on):
                            raise error
                    if hedges and (budget is None or budget.try_spend()):
                        hedges -= 1
                        start("failure")
                    elif not running:
                        raise error
            finally:
                error = None  # no cycle through this frame's traceback
                for entry in running:
                    task = entry[_TASK]
                    task.cancel()
                    _background.add(task)
                    task.add_done_callback(_discard)

        return link

    def __repr__(self) -> str:
        how = f"percentile={self.percentile}" if self.percentile is not None else f"delay={self.delay:g}"
        return f"Hedge({how}, max_hedges={self.max_hedges}, name={self.name!r})"


def _fire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(_TIMER)

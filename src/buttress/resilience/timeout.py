"""Timeouts for asyncio calls: cancel the inner coroutine when time is up."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import TimeoutError
from buttress.events import TimeoutExpired
from buttress.resilience._policy import AsyncLink, Policy, SyncLink, invoke_async

__all__ = ["Timeout"]

# An entry is a list [deadline, task or None once finished, fired]: cheaper than an object.
_DEADLINE, _TASK, _FIRED = 0, 1, 2

try:  # Python 3.12+: a C function
    from _asyncio import current_task as _current_task  # type: ignore[attr-defined]
except ImportError:  # Python 3.11: asyncio.current_task is a Python wrapper around this dict
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    _current_task = _current_tasks.get


class _Timers:
    """The deadlines one Timeout policy has set on one event loop, in the order they were set.

    A policy's timeout is constant and time is monotonic, so deadlines arrive in order and a
    deque is already sorted: one loop timer, armed for the earliest live deadline, serves every
    call. A call that finishes only marks its entry, so the common case costs a list and an
    append instead of a loop timer per call (``asyncio.timeout`` costs ~4 µs here).
    """

    __slots__ = ("armed", "loop", "now", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, now: Callable[[], float]) -> None:
        self.loop = loop
        self.now = now
        self.pending: deque[list[Any]] = deque()
        self.armed = False

    def add(self, deadline: float, task: asyncio.Task[Any]) -> list[Any]:
        entry = [deadline, task, False]
        self.pending.append(entry)
        if not self.armed:
            self._arm(deadline)
        return entry

    def done(self, entry: list[Any]) -> None:
        entry[_TASK] = None
        pending = self.pending
        while pending and pending[0][_TASK] is None:
            pending.popleft()

    def _arm(self, deadline: float) -> None:
        self.armed = True
        self.loop.call_later(max(0.0, deadline - self.now()), self._fire)

    def _fire(self) -> None:
        self.armed = False
        now = self.now()
        pending = self.pending
        while pending:
            entry = pending[0]
            task = entry[_TASK]
            if task is not None and entry[_DEADLINE] > now:
                break
            pending.popleft()
            if task is not None:
                entry[_FIRED] = True
                task.cancel()
        if pending:
            self._arm(pending[0][_DEADLINE])


class Timeout(Policy):
    """Cancel an awaited call that runs longer than ``seconds`` and raise our ``TimeoutError``.

    The inner coroutine is cancelled (it sees :class:`asyncio.CancelledError` at its current
    ``await``, so its ``finally`` blocks run) and the caller gets
    :class:`buttress.errors.TimeoutError`, which is also the builtin :class:`TimeoutError`.
    A ``TimeoutError`` raised by the inner code itself, or the cancellation of the *caller*,
    passes through unchanged. All calls through one ``Timeout`` on one event loop share a
    single loop timer, so a timeout costs a fraction of ``asyncio.timeout``.

    Only coroutines can be interrupted this way; wrapping a sync function raises
    :class:`TypeError` (sync deadlines come with the deadline policy).

    Args:
        seconds: the time limit (float seconds or a timedelta), > 0.
        name: identifies the policy in errors and events.
        clock: where deadlines are read from; the event loop's timer wakes the policy up.

    Example:
        >>> import asyncio
        >>> @Timeout(0.01)
        ... async def slow() -> None:
        ...     await asyncio.Event().wait()
        >>> try:
        ...     asyncio.run(slow())
        ... except TimeoutError as e:
        ...     print(e)
        call timed out after 0.01s
    """

    __slots__ = ("_last", "_now", "seconds")

    def __init__(
        self, seconds_: float | timedelta, /, name: str | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(name)
        limit = seconds(seconds_)
        p = Problems(f"Timeout {name!r}" if name else "Timeout")
        p.positive("seconds", limit)
        p.raise_if_any()
        self.seconds = float(limit)
        self._last: _Timers | None = None
        self._now = clock.monotonic
        self._compose()

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            raise TypeError(self._sync_message(fn))

        return link

    def _sync_message(self, fn: object) -> str:
        name = getattr(fn, "__qualname__", repr(fn))
        return (
            f"Timeout can only interrupt coroutines, and {name} is a sync function; "
            "use an async function, or a thread-based deadline for blocking code"
        )

    def _requires_async(self) -> bool:
        return True

    def _timers(self, loop: asyncio.AbstractEventLoop) -> _Timers:
        # One set of timers per loop in use; an earlier loop's set lives on through its armed
        # timer callback for as long as it has deadlines pending, then goes with its loop.
        timers = self._last = _Timers(loop, self._now)
        return timers

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        limit = self.seconds
        name = self.name
        events = self.events
        now = self._now
        get_loop = asyncio.get_running_loop
        direct = nxt is invoke_async  # innermost: await the function itself, one frame fewer

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            loop = get_loop()
            task = _current_task(loop)
            if task is None:  # pragma: no cover - a coroutine driven by hand, outside any task
                raise RuntimeError("Timeout must be awaited inside an asyncio task")
            timers = self._last
            if timers is None or timers.loop is not loop:
                timers = self._timers(loop)
            cancelling = task.cancelling()
            entry = timers.add(now() + limit, task)
            try:
                return await (fn(*args, **kwargs) if direct else nxt(fn, args, kwargs))
            except asyncio.CancelledError:
                # Ours only if our timer fired and nobody else asked to cancel the task meanwhile
                # (the rule asyncio.timeout follows).
                if entry[_FIRED] and task.uncancel() <= cancelling:
                    entry[_FIRED] = False
                    if events.listeners:
                        events.emit(TimeoutExpired(name, limit))
                    label = f"{name!r} " if name else ""
                    raise TimeoutError(
                        f"call {label}timed out after {limit:g}s", policy=name, timeout=limit
                    ) from None
                raise
            finally:
                if entry[_FIRED]:  # fired as the call completed: take our cancel request back
                    task.uncancel()
                timers.done(entry)

        return link

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g}, name={self.name!r})"

"""Timeouts: cancel an awaited call when time is up; for sync code, a worker thread or a
cooperative deadline. Every timeout honours the current :class:`~buttress.resilience.Deadline`."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from contextvars import Token
from datetime import timedelta
from typing import Any, Literal

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import TimeoutError
from buttress.events import TimeoutExpired
from buttress.resilience._policy import AsyncLink, Policy, SyncLink, invoke_async, invoke_sync
from buttress.resilience._timers import FIRED as _FIRED
from buttress.resilience._timers import Timers as _Timers
from buttress.resilience._timers import current_task as _current_task
from buttress.resilience.deadline import Deadline, _current, current_get

__all__ = ["SyncMode", "Timeout"]

SyncMode = Literal["thread", "cooperative"]
"""How a :class:`Timeout` bounds a sync function; see :class:`Timeout`."""


class Timeout(Policy):
    """Cancel an awaited call that runs longer than ``seconds`` and raise our ``TimeoutError``.

    The inner coroutine is cancelled (it sees :class:`asyncio.CancelledError` at its current
    ``await``, so its ``finally`` blocks run) and the caller gets
    :class:`buttress.errors.TimeoutError`, which is also the builtin :class:`TimeoutError`.
    A ``TimeoutError`` raised by the inner code itself, or the cancellation of the *caller*,
    passes through unchanged. All calls through one ``Timeout`` on one event loop share a
    single loop timer, so a timeout costs a fraction of ``asyncio.timeout``.

    Under a current :class:`~buttress.resilience.Deadline` the limit is
    ``min(seconds, time left)``, and for the duration of the call the timeout is itself the
    current deadline, so the retries, per-attempt timeouts and clients inside it see what is
    left. A call that starts with no time left fails at once without running.

    Python cannot interrupt a running sync function, so by default wrapping one raises
    :class:`TypeError`. Choose how to bound sync code with ``sync``, knowing the trade-off:

    - ``"thread"``: run the function in a new daemon thread and wait for it at most the limit.
      The caller gets its ``TimeoutError`` on time, but the function is *abandoned*, not
      stopped: it runs on to its end in the background, holding whatever it holds (a
      connection, a lock, a transaction), and its result or error is dropped. Each call costs
      a thread start (tens of µs), and context variables are copied into the thread, so the
      abandoned function can still stop early by calling
      :func:`~buttress.resilience.check_deadline`. The wait is measured by the thread
      primitive (real time), not by ``clock``.
    - ``"cooperative"``: run the function in the calling thread with the deadline current; the
      function stops itself by calling :func:`~buttress.resilience.check_deadline` (or reading
      :func:`~buttress.resilience.time_left`) between steps. Nothing is abandoned and nothing
      is interrupted mid-step, but a function that never checks overruns freely; when it
      returns late, its result is still returned (the work is done).

    Args:
        seconds: the time limit (float seconds or a timedelta), > 0.
        name: identifies the policy in errors and events.
        sync: how to bound sync functions: ``"thread"``, ``"cooperative"`` or ``None`` (refuse).
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

    __slots__ = ("_last", "_now", "seconds", "sync")

    def __init__(
        self,
        seconds_: float | timedelta,
        /,
        name: str | None = None,
        *,
        sync: SyncMode | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        limit = seconds(seconds_)
        p = Problems(f"Timeout {name!r}" if name else "Timeout")
        p.positive("seconds", limit)
        if sync not in (None, "thread", "cooperative"):
            p.add(f"sync must be 'thread', 'cooperative' or None (got {sync!r})")
        p.raise_if_any()
        self.seconds = float(limit)
        self.sync: SyncMode | None = sync
        self._last: _Timers | None = None
        self._now = clock.monotonic
        self._compose()

    # -- sync -------------------------------------------------------------------------------
    def _limit(self) -> float:
        """This call's limit: the own timeout, shrunk to what the current deadline leaves."""
        limit = self.seconds
        outer = current_get()
        if outer is not None:
            left = outer.remaining()
            if left < limit:
                return left
        return limit

    def _expired(self, limit: float) -> TimeoutError:
        if self.events.listeners:
            self.events.emit(TimeoutExpired(self.name, limit))
        label = f"{self.name!r} " if self.name else ""
        return TimeoutError(f"call {label}timed out after {limit:g}s", policy=self.name, timeout=limit)

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        if self.sync is None:

            def refuse(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                raise TypeError(self._sync_message(fn))

            return refuse
        now = self._now
        name = self.name
        direct = nxt is invoke_sync

        if self.sync == "cooperative":

            def cooperative(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                limit = self._limit()
                if limit <= 0.0:
                    raise self._expired(limit)
                token = _current.set(Deadline._at(now() + limit, now, name, limit))
                try:
                    return fn(*args, **kwargs) if direct else nxt(fn, args, kwargs)
                except TimeoutError as error:
                    if error.policy == name and error.timeout == limit and self.events.listeners:
                        self.events.emit(TimeoutExpired(name, limit))
                    raise
                finally:
                    _current.reset(token)

            return cooperative

        def in_thread(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            limit = self._limit()
            if limit <= 0.0:
                raise self._expired(limit)
            context = contextvars.copy_context()
            context.run(_current.set, Deadline._at(now() + limit, now, name, limit))
            finished = threading.Event()
            outcome: list[Any] = []

            def run() -> None:
                try:
                    outcome.append((True, context.run(nxt, fn, args, kwargs)))
                except BaseException as error:  # handed to the caller, or dropped if abandoned
                    outcome.append((False, error))
                finally:
                    finished.set()

            label = name or getattr(fn, "__qualname__", "call")
            threading.Thread(target=run, name=f"buttress-timeout-{label}", daemon=True).start()
            if not finished.wait(limit):
                raise self._expired(limit)
            ok, value = outcome[0]
            if ok:
                return value
            try:
                raise value
            finally:
                value = None  # no cycle through this frame's traceback

        return in_thread

    def _sync_message(self, fn: object) -> str:
        name = getattr(fn, "__qualname__", repr(fn))
        return (
            f"Timeout can only interrupt coroutines, and {name} is a sync function; use an async "
            "function, or Timeout(..., sync='thread') or sync='cooperative' (see the Timeout docs)"
        )

    def _requires_async(self) -> bool:
        return self.sync is None

    def _timers(self, loop: asyncio.AbstractEventLoop) -> _Timers:
        # One set of timers per loop in use; an earlier loop's set lives on through its armed
        # timer callback for as long as it has deadlines pending, then goes with its loop.
        timers = self._last = _Timers(loop, self._now)
        return timers

    # -- async ------------------------------------------------------------------------------
    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        own = self.seconds
        name = self.name
        events = self.events
        now = self._now
        get_loop = asyncio.get_running_loop
        get_deadline = current_get
        set_deadline = _current.set
        reset_deadline = _current.reset
        new = object.__new__
        direct = nxt is invoke_async  # innermost: await the function itself, one frame fewer

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            loop = get_loop()
            task = _current_task(loop)
            if task is None:  # pragma: no cover - a coroutine driven by hand, outside any task
                raise RuntimeError("Timeout must be awaited inside an asyncio task")
            timers = self._last
            if timers is None or timers.loop is not loop:
                timers = self._timers(loop)
            limit = own
            outer = get_deadline()
            if outer is not None:
                left = outer.remaining()
                if left < own:
                    if left <= 0.0:
                        raise self._expired(0.0)
                    limit = left
            cancelling = task.cancelling()
            started = now()
            entry = timers.add(started + limit, task)
            # The outer deadline, when it is the tighter one, is already current.
            if limit == own:
                # Deadline._at, inlined: this is the success path of every async timeout.
                deadline = new(Deadline)
                deadline.at = started + limit
                deadline._now = now
                deadline._policy = name
                deadline._timeout = limit
                token: Token[Deadline | None] | None = set_deadline(deadline)
            else:  # the outer deadline is the tighter one, and already current
                token = None
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
                if token is not None:
                    reset_deadline(token)
                if entry[_FIRED]:  # fired as the call completed: take our cancel request back
                    task.uncancel()
                timers.done(entry)

        return link

    def __repr__(self) -> str:
        sync = f", sync={self.sync!r}" if self.sync is not None else ""
        return f"Timeout({self.seconds:g}, name={self.name!r}{sync})"

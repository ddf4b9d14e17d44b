"""The bulkhead: at most ``max_concurrent`` calls at once, a fair queue for a few more.

The decision ("may I enter?" → a slot, a place in the queue, or a refusal; "I left" → the waiter
to hand the slot to) is made once, in :class:`_Slots`, under one lock and without waiting. The
sync driver waits on a per-waiter lock, the async driver on a future of the waiter's event loop;
both are thin. A freed slot is handed straight to the oldest waiter, so the queue is FIFO and a
newcomer can never overtake a caller that is already waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from buttress._validation import Problems, seconds
from buttress.errors import BulkheadFullError
from buttress.events import BulkheadRejected
from buttress.resilience._policy import AsyncLink, Policy, SyncLink, invoke_async, invoke_sync
from buttress.resilience.deadline import current_get

__all__ = ["Bulkhead"]


class _Waiter:
    """A caller in the queue. ``granted`` is set, under the bulkhead's lock, when a slot is its."""

    __slots__ = ("granted", "loop", "signal")

    def __init__(self, signal: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        self.signal = signal  # a held threading.Lock (sync) or an asyncio.Future (async)
        self.loop = loop
        self.granted = False


def _wake_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Slots:
    """The sans-IO core: free slots and the FIFO queue; it never waits and never wakes anybody.

    Free slots are tokens in a list, so the uncontended paths need no lock: under the GIL one
    ``list.pop()`` (enter) or ``list.append()`` (leave) is atomic. Everything that touches the
    queue holds ``lock``. A slot freed while somebody waits is handed to the oldest waiter by
    :meth:`dispatch`; because a leaver appends its token *before* it looks at the queue, and a
    waiter joins the queue *before* it looks for a token, no wake-up can be lost.
    """

    __slots__ = ("lock", "max_concurrent", "max_queued", "queue", "tokens")

    def __init__(self, max_concurrent: int, max_queued: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.tokens: list[None] = [None] * max_concurrent
        self.queue: deque[_Waiter] = deque()
        self.lock = threading.Lock()

    def try_enter(self) -> bool:
        if self.queue:  # a newcomer never overtakes a waiter
            return False
        try:
            self.tokens.pop()
        except IndexError:
            return False
        return True

    def enter_or_queue(self, waiter: _Waiter) -> tuple[bool | None, list[_Waiter]]:
        """(True: entered | None: queued, wait for ``granted`` | False: full, waiters to wake)."""
        with self.lock:
            queue = self.queue
            if not queue and self.tokens:
                self.tokens.pop()
                return True, []
            if len(queue) >= self.max_queued:
                return False, []
            queue.append(waiter)
            return None, self._dispatch()

    def _dispatch(self) -> list[_Waiter]:
        """Hand free slots to the oldest waiters; call with ``lock`` held."""
        woken: list[_Waiter] = []
        queue, tokens = self.queue, self.tokens
        while queue and tokens:
            tokens.pop()
            waiter = queue.popleft()
            waiter.granted = True
            woken.append(waiter)
        return woken

    def leave(self) -> list[_Waiter]:
        """Free a slot; returns the waiters it went to (the caller wakes them). The links of
        :class:`Bulkhead` inline this."""
        self.tokens.append(None)
        if not self.queue:
            return []
        with self.lock:
            return self._dispatch()

    def abandon(self, waiter: _Waiter) -> bool:
        """A waiter gives up; True when it had been granted a slot meanwhile (it now holds it)."""
        with self.lock:
            if waiter.granted:
                return True
            self.queue.remove(waiter)
            return False


class Bulkhead(Policy):
    """Cap concurrent calls at ``max_concurrent``; queue up to ``max_queued`` more, fairly.

    A call that finds a free slot runs at once. Otherwise it waits in a FIFO queue, if the
    queue has room, for at most ``queue_timeout`` seconds (and never past the current
    :class:`~buttress.resilience.Deadline`); a call that finds the queue full, or whose wait
    runs out, is refused with :class:`~buttress.errors.BulkheadFullError` naming the policy.
    A freed slot goes straight to the oldest waiter. A waiter that is cancelled (or times out)
    leaves the queue, and a slot granted to it at that very moment is passed on. One bulkhead
    may be shared by threads and asyncio tasks (even on several event loops) at once.

    The bulkhead separates *its* dependency's load from the rest of the process: 10 slow
    calls to a sick service hold 10 slots, not every worker thread.

    Waits are measured by the waiting primitive (the thread lock, or the event loop's timer),
    so a fake clock does not shorten them.

    Args:
        max_concurrent: calls allowed to run at once (>= 1).
        max_queued: callers allowed to wait for a slot (>= 0; 0 refuses at once when full).
        queue_timeout: the longest wait for a slot in seconds (``None``: as long as it takes,
            bounded only by the current deadline).
        name: identifies the policy in errors and events.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> bulkhead = Bulkhead(max_concurrent=2, max_queued=0, name="reports")
        >>> with bulkhead.guard():
        ...     bulkhead.active
        1
        >>> bulkhead.call(lambda: "done")
        'done'
    """

    __slots__ = ("_slots", "queue_timeout")

    def __init__(
        self,
        max_concurrent: int = 10,
        max_queued: int = 0,
        *,
        queue_timeout: float | timedelta | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        wait = None if queue_timeout is None else seconds(queue_timeout)
        p = Problems(f"Bulkhead {name!r}" if name else "Bulkhead")
        p.int_at_least("max_concurrent", max_concurrent, 1)
        p.int_at_least("max_queued", max_queued, 0)
        if wait is not None:
            p.non_negative("queue_timeout", wait)
        p.raise_if_any()
        self.queue_timeout: float | None = None if wait is None else float(wait)
        self._slots = _Slots(max_concurrent, max_queued)
        self._compose()

    # -- state --------------------------------------------------------------------------
    @property
    def max_concurrent(self) -> int:
        """Calls allowed to run at once."""
        return self._slots.max_concurrent

    @property
    def max_queued(self) -> int:
        """Callers allowed to wait for a slot."""
        return self._slots.max_queued

    @property
    def active(self) -> int:
        """Calls holding a slot right now."""
        return self._slots.max_concurrent - len(self._slots.tokens)

    @property
    def queued(self) -> int:
        """Callers waiting for a slot right now."""
        return len(self._slots.queue)

    @property
    def available(self) -> int:
        """Free slots right now."""
        return len(self._slots.tokens)

    # -- the sans-IO entry points -------------------------------------------------------
    def try_enter(self) -> bool:
        """Take a slot if one is free and nobody is waiting; never waits. Pair with :meth:`leave`."""
        return self._slots.try_enter()

    def leave(self) -> None:
        """Give a slot back (handing it to the oldest waiter, if any)."""
        for waiter in self._slots.leave():
            _wake(waiter)

    # -- drivers ------------------------------------------------------------------------
    def _wait_limit(self) -> float | None:
        limit = self.queue_timeout
        deadline = current_get()
        if deadline is not None:
            left = deadline.remaining()
            if limit is None or left < limit:
                return left
        return limit

    def _full(self, reason: str) -> BulkheadFullError:
        slots = self._slots
        if self.events.listeners:
            self.events.emit(
                BulkheadRejected(self.name, reason, None, slots.max_concurrent, len(slots.queue))
            )
        label = f"bulkhead {self.name!r}" if self.name else "bulkhead"
        if reason == "full":
            message = f"{label} is full: {slots.max_concurrent} calls running and {slots.max_queued} waiting"
        else:
            message = f"{label} had no free slot within the {reason.replace('_', ' ')}"
        return BulkheadFullError(message, policy=self.name)

    def enter(self) -> None:
        """Take a slot, waiting in the queue if needed (sync). Pair with :meth:`leave`.

        Raises:
            BulkheadFullError: when the queue is full, or no slot came free in time.
        """
        slots = self._slots
        if slots.try_enter():
            return
        signal = threading.Lock()
        signal.acquire()
        waiter = _Waiter(signal, None)
        entered, woken_now = slots.enter_or_queue(waiter)
        for other in woken_now:
            _wake(other)
        if entered:
            return
        if entered is False:
            raise self._full("full")
        limit = self._wait_limit()
        try:
            woken = signal.acquire(timeout=-1 if limit is None else limit)
        except BaseException:
            if slots.abandon(waiter):
                self.leave()
            raise
        if not woken and not slots.abandon(waiter):
            raise self._full("queue_timeout" if limit == self.queue_timeout else "deadline")

    async def aenter(self) -> None:
        """Take a slot, waiting in the queue if needed (async). Pair with :meth:`leave`.

        Raises:
            BulkheadFullError: when the queue is full, or no slot came free in time.
        """
        slots = self._slots
        if slots.try_enter():
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(future, loop)
        entered, woken_now = slots.enter_or_queue(waiter)
        for other in woken_now:
            _wake(other)
        if entered:
            return
        if entered is False:
            raise self._full("full")
        limit = self._wait_limit()
        timer = None if limit is None else loop.call_later(limit, _wake_future, future)
        try:
            await future
        except BaseException:
            if slots.abandon(waiter):
                self.leave()  # granted as we were cancelled: pass the slot on
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not waiter.granted and not slots.abandon(waiter):
            raise self._full("queue_timeout" if limit == self.queue_timeout else "deadline")

    def guard(self) -> _Guard:
        """A context manager (``with`` or ``async with``) that holds a slot for its block.

        Raises:
            BulkheadFullError: on entry, when no slot is free and none comes free in time.
        """
        return _Guard(self)

    # The links inline the uncontended paths of _Slots: one pop to enter, one append (and a
    # look at the queue) to leave.
    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        slots = self._slots
        queue, take, give = slots.queue, slots.tokens.pop, slots.tokens.append
        enter, redispatch = self.enter, self._redispatch
        direct = nxt is invoke_sync

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if queue:
                enter()
            else:
                try:
                    take()
                except IndexError:
                    enter()
            try:
                return fn(*args, **kwargs) if direct else nxt(fn, args, kwargs)
            finally:
                give(None)
                if queue:
                    redispatch()

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        slots = self._slots
        queue, take, give = slots.queue, slots.tokens.pop, slots.tokens.append
        aenter, redispatch = self.aenter, self._redispatch
        direct = nxt is invoke_async

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if queue:
                await aenter()
            else:
                try:
                    take()
                except IndexError:
                    await aenter()
            try:
                return await (fn(*args, **kwargs) if direct else nxt(fn, args, kwargs))
            finally:
                give(None)
                if queue:
                    redispatch()

        return link

    def _redispatch(self) -> None:
        with self._slots.lock:
            woken = self._slots._dispatch()
        for waiter in woken:
            _wake(waiter)

    def __repr__(self) -> str:
        return (
            f"Bulkhead(max_concurrent={self.max_concurrent}, max_queued={self.max_queued}, "
            f"queue_timeout={self.queue_timeout}, name={self.name!r})"
        )


def _wake(waiter: _Waiter) -> None:
    loop = waiter.loop
    if loop is None:
        waiter.signal.release()
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _wake_future(waiter.signal)
    else:
        try:
            loop.call_soon_threadsafe(_wake_future, waiter.signal)
        except RuntimeError:  # pragma: no cover - the waiter's loop closed; nobody is left to wake
            pass


class _Guard:
    """One guarded block; made by :meth:`Bulkhead.guard`."""

    __slots__ = ("_bulkhead",)

    def __init__(self, bulkhead: Bulkhead) -> None:
        self._bulkhead = bulkhead

    def __enter__(self) -> _Guard:
        self._bulkhead.enter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bulkhead.leave()

    async def __aenter__(self) -> _Guard:
        await self._bulkhead.aenter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bulkhead.leave()

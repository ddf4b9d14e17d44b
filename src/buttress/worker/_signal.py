"""The stop signal a supervised worker watches: one object for asyncio and for threads."""

from __future__ import annotations

import asyncio
import threading

from buttress.clock import SYSTEM_CLOCK, Clock, SystemClock

__all__ = ["StopSignal"]


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake(waiter: asyncio.Future[None]) -> None:
    """Resolve ``waiter`` on its own loop, whichever thread calls ``set()``."""
    loop = waiter.get_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _resolve(waiter)
        return
    try:
        loop.call_soon_threadsafe(_resolve, waiter)
    except RuntimeError:
        # The waiter's loop is closed: nobody can be waiting on it any more.
        pass


class StopSignal:
    """Tells one worker that it should finish; safe to use from asyncio tasks and threads.

    The supervisor gives every worker its own signal and sets it on
    :meth:`Supervisor.stop <buttress.worker.Supervisor.stop>`. It behaves like a
    :class:`threading.Event` (``is_set()``, ``wait(timeout)``) so thread workers can use it as
    one, and it adds waits that end early when the signal is set:

    - ``await stop.asleep(5)`` (asyncio) and ``stop.sleep(5)`` (threads) wait through the
      injected clock and return ``True`` as soon as the stop is requested, so a worker loop is
      ``while not await stop.asleep(interval): ...``;
    - ``await stop.wait_async()`` suspends until the signal is set.

    With :class:`~buttress.testing.FakeClock`, ``asleep`` advances fake time instantly (so a
    worker loop runs as fast as the event loop turns), and the thread ``sleep`` calls
    ``clock.sleep``; only the system clock gives a thread sleep that a stop interrupts.

    Args:
        worker: the name of the worker it belongs to (pool members can tell themselves apart).
        clock: the clock that ``sleep`` and ``asleep`` wait on.

    Example:
        >>> stop = StopSignal("demo")
        >>> stop.is_set(), stop.wait(0)
        (False, False)
        >>> stop.set()
        >>> stop.is_set(), stop.sleep(30)
        (True, True)
    """

    __slots__ = ("_clock", "_event", "_lock", "_waiters", "worker")

    def __init__(self, worker: str = "", *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.worker = worker
        self._clock = clock
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        """Whether the stop has been requested."""
        return self._event.is_set()

    def set(self) -> None:
        """Request the stop and wake every waiter, sync or async (idempotent, thread-safe)."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            waiters, self._waiters = self._waiters, []
        # Wake outside the lock: call_soon_threadsafe may write to the loop's self-pipe.
        for waiter in waiters:
            _wake(waiter)

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling *thread* until the stop is requested or ``timeout`` passes.

        This is :meth:`threading.Event.wait` (real time); never call it on an event loop.

        Returns:
            ``True`` if the stop was requested.
        """
        return self._event.wait(timeout)

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` in a thread worker; return ``True`` if the stop was requested.

        On the system clock the sleep ends as soon as the stop is requested. On any other clock
        it is ``clock.sleep(seconds)`` followed by a check (a fake clock returns at once).
        """
        if isinstance(self._clock, SystemClock):
            return self._event.wait(seconds)
        if self._event.is_set():
            return True
        self._clock.sleep(seconds)
        return self._event.is_set()

    def _register(self) -> asyncio.Future[None] | None:
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._event.is_set():
                return None
            self._waiters.append(waiter)
        return waiter

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def wait_async(self) -> None:
        """Suspend the calling task until the stop is requested."""
        waiter = self._register()
        if waiter is None:
            return
        try:
            await waiter
        finally:
            self._discard(waiter)

    async def asleep(self, seconds: float) -> bool:
        """Wait ``seconds`` through the clock, ending early when the stop is requested.

        Returns:
            ``True`` if the stop was requested (before or during the wait).
        """
        waiter = self._register()
        if waiter is None:
            return True
        sleeper = asyncio.ensure_future(self._clock.asleep(seconds))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
            self._discard(waiter)
        return self._event.is_set()

    def __repr__(self) -> str:
        state = "set" if self._event.is_set() else "clear"
        return f"StopSignal(worker={self.worker!r}, {state})"

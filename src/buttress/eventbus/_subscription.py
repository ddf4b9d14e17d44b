"""One subscriber: its bounded queue, its backpressure policy and the task that consumes it.

The queue is a deque with two kinds of waiter, one consumer and any number of blocked
publishers, instead of :class:`asyncio.Queue`, because ``drop_oldest`` needs to discard from
the head and close needs to release blocked publishers and know exactly what was left.
Everything here runs on the bus's event loop thread; nothing takes a lock, and a handler is
always called with no lock held.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Final

from buttress.eventbus._results import BackpressurePolicy, SubscriberStats

__all__ = ["Handler", "Subscription"]

_log = logging.getLogger("buttress.eventbus")

Handler = Callable[[object], object]
"""A subscriber's handler: a sync function, or a coroutine function that the consumer awaits."""

QUEUED: Final = 0
DROPPED: Final = 1
FULL: Final = 2


class Subscription:
    """A subscriber of an :class:`~buttress.eventbus.EventBus`, and the handle to end it.

    Created by :meth:`EventBus.subscribe <buttress.eventbus.EventBus.subscribe>`. Its own
    consumer task takes events from its queue in order and calls the handler: an ``async``
    handler is awaited (one event at a time, so ordering holds); a sync handler runs in the
    consumer task on the event loop, so it must be quick (hand blocking work to
    :func:`asyncio.to_thread`). A handler that raises is logged (logger ``buttress.eventbus``)
    and counted; the next event is delivered as usual.

    :meth:`cancel` stops new events from reaching it; those already queued are still
    delivered (and counted by the bus's close report if the bus closes first).
    """

    __slots__ = ("_bus_remove", "_closing", "_getter", "_in_flight", "_items", "_putters", "_task",
                 "accepted", "active", "block_timeout", "buffer", "delivered", "dropped_newest",
                 "dropped_oldest", "failed", "handler", "name", "policy", "timed_out", "topic",
                 "undelivered")  # fmt: skip

    def __init__(self, name: str, topic: type | str, handler: Handler, *, buffer: int,
                 policy: BackpressurePolicy, block_timeout: float,
                 remove: Callable[[Subscription], None]) -> None:  # fmt: skip
        self.name = name
        self.topic = topic
        self.handler = handler
        self.buffer = buffer
        self.policy: BackpressurePolicy = policy
        self.block_timeout = block_timeout
        self.active = True
        self.accepted = self.delivered = self.failed = 0
        self.dropped_oldest = self.dropped_newest = self.timed_out = self.undelivered = 0
        self._bus_remove = remove
        self._items: deque[object] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = False

    def stats(self) -> SubscriberStats:
        """A snapshot of this subscriber's counters."""
        topic = self.topic if isinstance(self.topic, str) else self.topic.__qualname__
        return SubscriberStats(self.name, topic, self.policy, self.buffer, len(self._items), self.accepted,
                               self.delivered, self.failed, self.dropped_oldest, self.dropped_newest,
                               self.timed_out, self.undelivered, self.active)  # fmt: skip

    def cancel(self) -> None:
        """Receive no more events; deliver those already queued, then end (idempotent)."""
        if self.active:
            self.active = False
            self._bus_remove(self)
            self.begin_close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, policy={self.policy!r}, queued={len(self._items)})"

    # -- the queue -----------------------------------------------------------------------

    def offer(self, event: object) -> int:
        """Queue ``event`` without waiting: ``QUEUED``, ``DROPPED`` or ``FULL`` (block policy)."""
        items = self._items
        if len(items) < self.buffer:
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(
                    self._consume(), name=f"eventbus/{self.name}"
                )
            items.append(event)
            self.accepted += 1
            getter = self._getter
            if getter is not None and not getter.done():
                getter.set_result(None)
            return QUEUED
        policy = self.policy
        if policy == "drop_oldest":
            items.popleft()
            self.dropped_oldest += 1
            items.append(event)
            self.accepted += 1
            return QUEUED
        if policy == "drop_newest":
            self.dropped_newest += 1
            return DROPPED
        return FULL

    async def put(self, event: object) -> bool:
        """Wait up to ``block_timeout`` for room, then queue ``event``; ``False`` if given up."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.block_timeout):
                while len(self._items) >= self.buffer and not self._closing:
                    putter = loop.create_future()
                    self._putters.append(putter)
                    try:
                        await putter
                    except BaseException:
                        # Woken for a free slot but leaving anyway: pass the slot on.
                        if putter.done() and not putter.cancelled():
                            self._wake_putter()
                        raise
                    finally:
                        if putter in self._putters:
                            self._putters.remove(putter)
        except TimeoutError:
            self.timed_out += 1
            return False
        if self._closing:
            self.timed_out += 1
            return False
        return self.offer(event) == QUEUED

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return

    # -- the consumer --------------------------------------------------------------------

    async def _consume(self) -> None:
        items = self._items
        handler = self.handler
        loop = asyncio.get_running_loop()
        while True:
            if not items:
                if self._closing:
                    return
                getter = self._getter = loop.create_future()
                try:
                    await getter
                finally:
                    self._getter = None
                continue
            event = items.popleft()
            if self._putters:
                self._wake_putter()
            self._in_flight = True
            try:
                result = handler(event)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                self.failed += 1
                _log.exception("event handler %r failed on %r", self.name, event)
            else:
                self.delivered += 1
            finally:
                self._in_flight = False

    def begin_close(self) -> None:
        """Accept nothing more: release blocked publishers; the consumer ends once empty."""
        self._closing = True
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def abandon(self) -> int:
        """Give up on what is left (queued, and any event being handled); count it.

        The bus cancels the consumer task right after, so an interrupted handler's event is
        counted here, not as delivered."""
        left = len(self._items) + (1 if self._in_flight else 0)
        self._items.clear()
        self.undelivered += left
        return left

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The consumer task, once the first event arrived."""
        return self._task

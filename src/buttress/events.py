"""Typed events emitted by policies, and the listeners that receive them.

Every policy owns an :class:`EventPublisher` (``policy.events``). Listeners subscribe to one
policy or, through :func:`subscribe`, to every policy in the process. With no listener the
cost of emitting is one attribute check: event objects are built only when somebody listens.
A listener that raises is logged (logger ``buttress.events``) and never breaks the call.

Example:
    >>> from buttress.events import BreakerStateChanged, subscribe
    >>> seen = []
    >>> with subscribe(seen.append):
    ...     pass  # policies used here report to ``seen``
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = [
    "BreakerStateChanged",
    "BulkheadRejected",
    "CallRejected",
    "Event",
    "EventPublisher",
    "FallbackUsed",
    "HedgeStarted",
    "LimitChanged",
    "Listener",
    "RetryAttemptFailed",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "RetryScheduled",
    "Subscription",
    "TimeoutExpired",
    "subscribe",
]

_log = logging.getLogger("buttress.events")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events.

    Attributes:
        policy: the name of the policy that emitted it (``""`` for an anonymous one).
    """

    policy: str


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """An attempt failed and another one will start after ``delay`` seconds."""

    attempt: int
    delay: float
    error: BaseException | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class RetryAttemptFailed(Event):
    """An attempt failed with an error that is not retried (or was marked permanent)."""

    attempt: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class RetryExhausted(Event):
    """The retry policy gave up; ``reason`` is ``"attempts"``, ``"elapsed"``, ``"backoff"``,
    ``"budget"`` or ``"deadline"``."""

    attempts: int
    reason: str
    error: BaseException | None
    result: Any = None


@dataclass(frozen=True, slots=True)
class RetryBudgetExhausted(Event):
    """A retry was refused because the shared retry budget had no tokens left."""

    attempt: int


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """A circuit breaker moved from ``old`` to ``new`` (state values such as ``"open"``)."""

    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A policy refused a call without running it (open breaker, throttle, full bulkhead ...)."""

    reason: str
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class TimeoutExpired(Event):
    """A call exceeded ``timeout`` seconds and was cancelled."""

    timeout: float


@dataclass(frozen=True, slots=True)
class BulkheadRejected(CallRejected):
    """A bulkhead or concurrency limit refused a call; ``reason`` is ``"full"``,
    ``"queue_timeout"``, ``"deadline"`` or ``"limit"``. It is a :class:`CallRejected`, so
    listeners counting rejections see it too."""

    max_concurrent: int
    queued: int


@dataclass(frozen=True, slots=True)
class LimitChanged(Event):
    """An adaptive concurrency limit moved from ``old`` to ``new`` concurrent calls."""

    old: int
    new: int
    latency: float
    dropped: bool


@dataclass(frozen=True, slots=True)
class HedgeStarted(Event):
    """A hedging policy started extra attempt number ``attempt`` (2 for the first hedge)
    ``delay`` seconds after the call began; ``reason`` is ``"delay"`` or ``"failure"``."""

    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """A fallback replaced a failed call's outcome; ``error`` is what it replaced (``None``
    when a rejected result was replaced)."""

    error: BaseException | None
    result: Any = None


Listener = Callable[[Event], object]
"""A callable that receives events; its return value is ignored."""

_lock = threading.Lock()
_global: tuple[Listener, ...] = ()
_publishers: weakref.WeakSet[EventPublisher] = weakref.WeakSet()


def _deliver(listeners: tuple[Listener, ...], event: Event) -> None:
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            _log.exception("event listener %r failed on %r", listener, event)


class EventPublisher:
    """The listeners of one policy (plus every global listener).

    ``listeners`` is a tuple that policies test for truth before they build an event, which
    is what makes emitting free when nobody listens.
    """

    __slots__ = ("__weakref__", "_own", "listeners")

    listeners: tuple[Listener, ...]

    def __init__(self) -> None:
        self._own: tuple[Listener, ...] = ()
        with _lock:
            self.listeners = _global
            _publishers.add(self)

    def subscribe(self, listener: Listener) -> Subscription:
        """Deliver this policy's events to ``listener`` until the returned subscription ends."""
        with _lock:
            self._own = (*self._own, listener)
            self.listeners = (*_global, *self._own)
        return Subscription(lambda: self._remove(listener))

    def _remove(self, listener: Listener) -> None:
        with _lock:
            own = list(self._own)
            if listener in own:
                own.remove(listener)
            self._own = tuple(own)
            self.listeners = (*_global, *self._own)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every listener; errors in listeners are logged, not raised."""
        _deliver(self.listeners, event)


class Subscription:
    """Handle returned by ``subscribe``: call :meth:`cancel`, or use it as a context manager."""

    __slots__ = ("_cancel",)

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel: Callable[[], None] | None = cancel

    def cancel(self) -> None:
        """Stop delivering events to the listener (idempotent)."""
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


def _refresh_all() -> None:
    for publisher in list(_publishers):
        publisher.listeners = (*_global, *publisher._own)


def subscribe(listener: Listener) -> Subscription:
    """Deliver the events of every policy in the process, present and future, to ``listener``.

    Returns:
        a :class:`Subscription`; cancel it (or leave its ``with`` block) to stop.
    """
    global _global
    with _lock:
        _global = (*_global, listener)
        _refresh_all()

    def cancel() -> None:
        global _global
        with _lock:
            items = list(_global)
            if listener in items:
                items.remove(listener)
            _global = tuple(items)
            _refresh_all()

    return Subscription(cancel)

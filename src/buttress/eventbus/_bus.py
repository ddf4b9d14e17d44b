"""The event bus: routing by event type and string topic, publishing, closing with a drain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from buttress._validation import Problems, seconds
from buttress.eventbus._results import (
    BackpressurePolicy,
    BusClosedError,
    CloseReport,
    PublishResult,
    SubscriberStats,
)
from buttress.eventbus._subscription import DROPPED, FULL, QUEUED, Handler, Subscription

__all__ = ["EventBus"]

_log = logging.getLogger("buttress.eventbus")

E = TypeVar("E")

_POLICIES = ("block", "drop_oldest", "drop_newest")


class EventBus:
    """Typed in-process publish/subscribe with a bounded queue per subscriber.

    A subscriber names its topic as an **event type** (it then receives instances of that
    class and of its subclasses; ``object`` receives everything) or as a **string topic** (it
    receives what is published with ``topic=`` that string). Each subscriber has its own queue
    of ``buffer`` events, its own backpressure policy and its own consumer task, so a slow or
    failing handler never delays or breaks another subscriber, nor the publisher: handler
    errors are logged and counted. Events reach each subscriber in the order it accepted them.

    Publishing only queues; no lock is ever held while a handler runs. ``await publish()``
    may wait for a full ``block`` subscriber (up to its ``block_timeout``, all such waits run
    concurrently); ``publish_nowait()`` never waits. Both return a :class:`PublishResult`
    rather than raise when a subscriber drops the event, because the others did take it.

    :meth:`close` stops accepting events, lets the consumers drain their queues within a
    timeout, then cancels them and reports how many accepted events were never handled.

    A bus belongs to one event loop: publish, subscribe and cancel from that loop's thread
    (from another thread, ``loop.call_soon_threadsafe(bus.publish_nowait, event)``). The
    timeouts are real-time bounds enforced by the event loop, like
    :class:`buttress.resilience.Timeout`.

    Args:
        name: names the bus in logs and errors.
        buffer: the default queue capacity of a subscriber (>= 1).
        policy: the default backpressure policy (``"block"``, ``"drop_oldest"``,
            ``"drop_newest"``).
        block_timeout: the default time a ``block`` subscriber makes ``publish`` wait, in
            seconds (finite, >= 0).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> import asyncio
        >>> async def main() -> list[str]:
        ...     seen: list[str] = []
        ...     async with EventBus() as bus:
        ...         bus.subscribe(str, seen.append)
        ...         await bus.publish("hello")
        ...     return seen
        >>> asyncio.run(main())
        ['hello']
    """

    __slots__ = ("_block_timeout", "_buffer", "_closed", "_closing", "_draining", "_names", "_policy",
                 "_subscribers", "_topic_routes", "_type_routes", "name")  # fmt: skip

    def __init__(
        self,
        name: str = "eventbus",
        *,
        buffer: int = 100,
        policy: BackpressurePolicy = "block",
        block_timeout: float | timedelta = 1.0,
    ) -> None:
        p = Problems(f"EventBus {name!r}")
        timeout = _check_options(p, buffer, policy, block_timeout)
        p.raise_if_any()
        self.name = name
        self._buffer = buffer
        self._policy: BackpressurePolicy = policy
        self._block_timeout = timeout
        self._subscribers: tuple[Subscription, ...] = ()
        self._type_routes: dict[type, tuple[Subscription, ...]] = {}
        self._topic_routes: dict[str, tuple[Subscription, ...]] = {}
        self._draining: dict[Subscription, None] = {}  # an ordered set
        self._names: dict[str, int] = {}
        self._closed = False
        self._closing: asyncio.Future[CloseReport] | None = None

    @overload
    def subscribe(self, topic: type[E], handler: Callable[[E], object], *, buffer: int | None = None,
                  policy: BackpressurePolicy | None = None, block_timeout: float | timedelta | None = None,
                  name: str | None = None) -> Subscription: ...  # fmt: skip
    @overload
    def subscribe(self, topic: str, handler: Callable[[Any], object], *, buffer: int | None = None,
                  policy: BackpressurePolicy | None = None, block_timeout: float | timedelta | None = None,
                  name: str | None = None) -> Subscription: ...  # fmt: skip
    def subscribe(
        self,
        topic: type[Any] | str,
        handler: Callable[[Any], object],
        *,
        buffer: int | None = None,
        policy: BackpressurePolicy | None = None,
        block_timeout: float | timedelta | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Deliver events of ``topic`` to ``handler`` until the subscription is cancelled.

        Args:
            topic: an event type (subclasses included) or a string topic.
            handler: ``def handle(event)`` or ``async def handle(event)``.
            buffer: this subscriber's queue capacity (default: the bus's).
            policy: what a full queue does (default: the bus's).
            block_timeout: how long a ``block`` subscriber makes ``publish`` wait.
            name: the subscriber's name in stats and logs (default: the handler's qualified
                name, made unique with ``#2``, ``#3`` ...).

        Returns:
            The :class:`Subscription`; ``cancel()`` it (or leave its ``with`` block) to stop.

        Raises:
            ConfigurationError: invalid arguments, or ``name`` already taken.
            BusClosedError: the bus is closed.
        """
        p = Problems("EventBus.subscribe")
        if not (isinstance(topic, type) or (isinstance(topic, str) and topic)):
            p.add(f"topic must be an event type or a non-empty string (got {topic!r})")
        if not callable(cast(object, handler)):
            p.add(f"handler must be a callable (got {handler!r})")
        resolved_buffer = self._buffer if buffer is None else buffer
        resolved_policy = self._policy if policy is None else policy
        timeout = _check_options(p, resolved_buffer, resolved_policy,
                                 self._block_timeout if block_timeout is None else block_timeout)  # fmt: skip
        if name is not None and name in self._names:
            p.add(f"name {name!r} is already used by another subscriber")
        p.raise_if_any()
        if self._closed:
            raise BusClosedError(f"event bus {self.name!r} is closed", policy=self.name)
        subscription = Subscription(self._unique_name(name, handler), topic, cast(Handler, handler),
                                    buffer=resolved_buffer, policy=resolved_policy, block_timeout=timeout,
                                    remove=self._remove)  # fmt: skip
        # Publishers read the route caches before the subscriber tuple: replace them after it.
        self._subscribers = (*self._subscribers, subscription)
        self._type_routes = {}
        self._topic_routes = {}
        return subscription

    def _unique_name(self, name: str | None, handler: object) -> str:
        if name is not None:
            self._names[name] = 1
            return name
        base = getattr(handler, "__qualname__", None) or type(handler).__qualname__
        count = self._names.get(base, 0) + 1
        self._names[base] = count
        return base if count == 1 else f"{base}#{count}"

    def _remove(self, subscription: Subscription) -> None:
        self._subscribers = tuple(s for s in self._subscribers if s is not subscription)
        self._type_routes = {}
        self._topic_routes = {}
        task = subscription.task
        if task is not None and not task.done():
            self._draining[subscription] = None
            task.add_done_callback(lambda _: self._draining.pop(subscription, None))

    def _targets(self, event: object, topic: str | None) -> tuple[Subscription, ...]:
        cls = type(event)
        routes = self._type_routes
        targets = routes.get(cls)
        if targets is None:
            targets = tuple(
                s for s in self._subscribers if isinstance(s.topic, type) and issubclass(cls, s.topic)
            )
            routes[cls] = targets
        if topic is None:
            return targets
        topic_routes = self._topic_routes
        named = topic_routes.get(topic)
        if named is None:
            named = tuple(s for s in self._subscribers if s.topic == topic)
            topic_routes[topic] = named
        return targets + named if targets else named

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise BusClosedError(
                f"event bus {self.name!r} is closed; it accepts no more events", policy=self.name
            )

    def publish_nowait(self, event: object, *, topic: str | None = None) -> PublishResult:
        """Queue ``event`` for every matching subscriber without waiting.

        A full ``block`` subscriber does not take the event (a zero timeout; counted in its
        ``timed_out``). Must be called on the bus's event loop.

        Args:
            event: any object; type subscribers match it by class.
            topic: also deliver to the subscribers of this string topic.

        Returns:
            How many subscribers accepted and dropped the event.

        Raises:
            BusClosedError: the bus is closed or closing.
        """
        self._refuse_if_closed()
        accepted = dropped = 0
        for subscription in self._targets(event, topic):
            outcome = subscription.offer(event)
            if outcome == QUEUED:
                accepted += 1
            else:
                if outcome == FULL:
                    subscription.timed_out += 1
                dropped += 1
        return PublishResult(accepted, dropped)

    async def publish(self, event: object, *, topic: str | None = None) -> PublishResult:
        """Queue ``event`` for every matching subscriber, waiting for full ``block`` ones.

        The waits for several full ``block`` subscribers run concurrently, so the call takes
        at most the largest of their ``block_timeout``\\ s.

        Args:
            event: any object; type subscribers match it by class.
            topic: also deliver to the subscribers of this string topic.

        Returns:
            How many subscribers accepted and dropped the event.

        Raises:
            BusClosedError: the bus is closed or closing.
        """
        self._refuse_if_closed()
        accepted = dropped = 0
        blocked: list[Subscription] = []
        for subscription in self._targets(event, topic):
            outcome = subscription.offer(event)
            if outcome == QUEUED:
                accepted += 1
            elif outcome == DROPPED:
                dropped += 1
            else:
                blocked.append(subscription)
        if blocked:
            if len(blocked) == 1:
                outcomes = [await blocked[0].put(event)]
            else:
                outcomes = await asyncio.gather(*(s.put(event) for s in blocked))
            taken = sum(outcomes)
            accepted += taken
            dropped += len(outcomes) - taken
        return PublishResult(accepted, dropped)

    def stats(self) -> tuple[SubscriberStats, ...]:
        """The counters of every subscriber, active ones in subscription order, then those
        still draining after a cancel."""
        return tuple(s.stats() for s in (*self._subscribers, *self._draining))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    async def close(self, timeout: float | timedelta = 5.0, *, cancel_grace: float = 1.0) -> CloseReport:  # noqa: ASYNC109 - a shutdown hook's own budget
        """Stop accepting events, drain every queue within ``timeout``, then cancel the rest.

        Publishers blocked on a full subscriber are released at once (the event counts as
        ``timed_out`` for that subscriber). Consumers keep delivering what their queues hold;
        after ``timeout`` the remaining consumers are cancelled and every event they still
        held, including one whose handler was interrupted, is counted as undelivered: accepted
        events are never dropped silently. Calling ``close`` again returns the same report.

        Args:
            timeout: seconds to let the queues drain.
            cancel_grace: seconds to wait for cancelled consumers to unwind.

        Returns:
            A :class:`CloseReport`.

        Raises:
            ConfigurationError: a negative or invalid timeout.
        """
        limit = seconds(timeout)
        p = Problems("EventBus.close")
        p.non_negative("timeout", limit)
        p.non_negative("cancel_grace", cancel_grace)
        p.raise_if_any()
        if self._closing is not None:
            return await asyncio.shield(self._closing)
        self._closed = True
        self._closing = asyncio.get_running_loop().create_future()
        subscriptions = [*self._subscribers, *self._draining]
        for subscription in subscriptions:
            subscription.active = False
            subscription.begin_close()
        consumers = {s.task: s for s in subscriptions if s.task is not None and not s.task.done()}
        pending: set[asyncio.Task[None]] = set()
        if consumers:
            _, pending = await asyncio.wait(consumers, timeout=limit)
        undelivered_by: dict[str, int] = {}
        cancelled: list[str] = []
        for task in pending:
            subscription = consumers[task]
            cancelled.append(subscription.name)
            undelivered_by[subscription.name] = subscription.abandon()
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=cancel_grace)
        report = CloseReport(
            not pending, sum(undelivered_by.values()), undelivered_by, tuple(sorted(cancelled))
        )
        if report.undelivered:
            _log.warning("event bus %r closed with %d undelivered events: %s", self.name, report.undelivered,
                         undelivered_by)  # fmt: skip
        self._closing.set_result(report)
        return report

    async def __aenter__(self) -> EventBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"EventBus({self.name!r}, subscribers={len(self._subscribers)}, closed={self._closed})"


def _check_options(p: Problems, buffer: object, policy: object, block_timeout: float | timedelta) -> float:
    p.int_at_least("buffer", buffer, 1)
    if policy not in _POLICIES:
        p.add(f"policy must be one of 'block', 'drop_oldest', 'drop_newest' (got {policy!r})")
    timeout = seconds(block_timeout)
    before = len(p.items)
    p.non_negative("block_timeout", timeout, allow_inf=False)
    return float(timeout) if len(p.items) == before else 0.0

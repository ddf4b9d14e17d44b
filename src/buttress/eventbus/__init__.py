"""Typed in-process publish/subscribe with per-subscriber bounded buffers and backpressure.

- :class:`EventBus`: subscribe by event type (subclasses included) or string topic; publish
  with ``await bus.publish(event)`` or ``bus.publish_nowait(event)``; ``await bus.close()``
  drains within a timeout and reports what was left.
- :class:`Subscription`: the handle a subscriber cancels; its :meth:`~Subscription.stats`.

See ``docs/eventbus.md``.
"""

from buttress.eventbus._bus import EventBus
from buttress.eventbus._results import (
    BackpressurePolicy,
    BusClosedError,
    CloseReport,
    PublishResult,
    SubscriberStats,
)
from buttress.eventbus._subscription import Handler, Subscription

__all__ = [
    "BackpressurePolicy",
    "BusClosedError",
    "CloseReport",
    "EventBus",
    "Handler",
    "PublishResult",
    "SubscriberStats",
    "Subscription",
]

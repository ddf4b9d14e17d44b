"""What the event bus reports: publish results, per-subscriber statistics, the close report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from buttress.errors import ButtressError

__all__ = ["BackpressurePolicy", "BusClosedError", "CloseReport", "PublishResult", "SubscriberStats"]

BackpressurePolicy = Literal["block", "drop_oldest", "drop_newest"]
"""What a subscriber's full buffer does with a new event:

- ``"block"``: ``await publish()`` waits up to the subscriber's ``block_timeout`` for room,
  then gives up on *this subscriber* (counted in ``timed_out``); ``publish_nowait()`` does not
  wait (a zero timeout);
- ``"drop_oldest"``: the oldest queued event is discarded to make room (``dropped_oldest``);
- ``"drop_newest"``: the new event is discarded (``dropped_newest``).
"""


class BusClosedError(ButtressError, RuntimeError):
    """The event bus is closed (or closing) and accepts no more events."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The fate of one published event.

    Attributes:
        accepted: subscribers that queued it (it will be delivered unless the bus closes
            before their handler gets to it, which :class:`CloseReport` counts).
        dropped: subscribers that did not take it (``drop_newest``, or ``block`` timed out).
    """

    accepted: int
    dropped: int

    @property
    def ok(self) -> bool:
        """No subscriber dropped the event."""
        return self.dropped == 0


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """Counters of one subscriber.

    ``accepted`` counts events queued; each accepted event ends up exactly once in
    ``delivered``, ``failed``, ``dropped_oldest`` or ``undelivered``, or is still ``queued``.

    Attributes:
        name: the subscriber's name (unique within its bus).
        topic: the event type's qualified name, or the string topic.
        policy: its backpressure policy.
        buffer: its queue capacity.
        queued: events waiting in its queue now.
        accepted: events that entered its queue.
        delivered: events its handler processed without raising.
        failed: events its handler raised on (logged, never propagated).
        dropped_oldest: queued events discarded to make room (``drop_oldest``).
        dropped_newest: new events discarded because the queue was full (``drop_newest``).
        timed_out: new events given up on by a ``block`` subscriber (the wait timed out, the
            publisher could not wait, or the bus closed during the wait).
        undelivered: accepted events abandoned when the bus closed before they were handled
            (including an event whose handler was cancelled mid-way).
        active: whether it still receives new events.
    """

    name: str
    topic: str
    policy: BackpressurePolicy
    buffer: int
    queued: int
    accepted: int
    delivered: int
    failed: int
    dropped_oldest: int
    dropped_newest: int
    timed_out: int
    undelivered: int
    active: bool

    @property
    def dropped(self) -> int:
        """Every event this subscriber lost to backpressure."""
        return self.dropped_oldest + self.dropped_newest + self.timed_out


@dataclass(frozen=True, slots=True)
class CloseReport:
    """How :meth:`EventBus.close <buttress.eventbus.EventBus.close>` went.

    Attributes:
        drained: every queue emptied within the timeout.
        undelivered: accepted events that were never handled, in all.
        undelivered_by: the same, per subscriber name (only those cancelled).
        cancelled: subscribers whose consumer was cancelled at the timeout.
    """

    drained: bool
    undelivered: int
    undelivered_by: dict[str, int]
    cancelled: tuple[str, ...]

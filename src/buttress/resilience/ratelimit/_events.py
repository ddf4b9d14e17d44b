"""Events emitted by rate limiters (see :mod:`buttress.events`)."""

from __future__ import annotations

from dataclasses import dataclass

from buttress.events import Event

__all__ = ["LimitExceeded"]


@dataclass(frozen=True, slots=True)
class LimitExceeded(Event):
    """A rate limiter refused ``cost`` units for ``key`` (after waiting ``waited`` seconds).

    Attributes:
        key: the limited key (``""`` for a global limit).
        cost: the units asked for.
        limit: the rule's capacity.
        retry_after: seconds until the units could be admitted (``inf``: never).
        waited: how long the caller waited before the refusal (0 without ``max_wait``).
    """

    key: str
    cost: int
    limit: int
    retry_after: float
    waited: float


# -- Redis backends (appended by the Redis backend's author) ----------------------------------
__all__ += ["RedisRecovered", "RedisUnavailable"]


@dataclass(frozen=True, slots=True)
class RedisUnavailable(Event):
    """A Redis-backed policy could not reach Redis within its timeout and applies its fault policy.

    Emitted once per outage (not per call), by the Redis rate limiters and the Redis breaker store.

    Attributes:
        error: the redis-py (or socket) error that started the outage.
        on_error: the fault policy now applied: ``"fail_open"``, ``"fail_closed"`` or ``"local"``.
    """

    error: BaseException
    on_error: str


@dataclass(frozen=True, slots=True)
class RedisRecovered(Event):
    """Redis answered again after an outage; ``downtime`` is seconds since the first fault."""

    downtime: float

"""The interface every limiter backend implements, whatever holds its state."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from buttress.resilience.ratelimit._decision import Decision
from buttress.resilience.ratelimit._rules import Rule

__all__ = ["Limiter", "ReleasingLimiter"]


@runtime_checkable
class Limiter(Protocol):
    """Answers "may ``cost`` units for ``key`` go now?" with a :class:`Decision`.

    Implemented by :class:`~buttress.resilience.ratelimit.MemoryLimiter` and the Redis
    limiters; :class:`~buttress.resilience.ratelimit.RateLimiter` drives any of them.

    ``cost`` must be an integer >= 1 (:class:`ValueError` otherwise). A ``cost`` above the
    rule's capacity is refused with ``retry_after = math.inf``; it never raises.
    """

    rule: Rule

    def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """Admit (and consume) ``cost`` units for ``key`` now, or refuse without consuming."""
        ...

    async def atry_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """:meth:`try_acquire` for asyncio code."""
        ...


@runtime_checkable
class ReleasingLimiter(Limiter, Protocol):
    """A limiter of calls in flight (:class:`~buttress.resilience.ratelimit.Concurrency`).

    Each admitted unit must be given back with :meth:`release` when the call completes.
    """

    def release(self, key: str = "", cost: int = 1) -> None:
        """Give back ``cost`` units of ``key`` (extra releases are ignored)."""
        ...

    async def arelease(self, key: str = "", cost: int = 1) -> None:
        """:meth:`release` for asyncio code."""
        ...

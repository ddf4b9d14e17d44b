"""The rate-limit policy: decorator / ``call`` / ``acall`` over any limiter, and fair waiting."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import RateLimitedError
from buttress.resilience._forwarding import specialise
from buttress.resilience._policy import AsyncLink, Policy, SyncLink
from buttress.resilience.ratelimit._decision import Decision
from buttress.resilience.ratelimit._events import LimitExceeded
from buttress.resilience.ratelimit._limiter import Limiter
from buttress.resilience.ratelimit._memory import MemoryLimiter
from buttress.resilience.ratelimit._rules import Concurrency

__all__ = ["RateLimiter"]

KeyFunction = Callable[..., str]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# The decorator's admitted path, compiled with the decorated function's own parameters (see
# buttress.resilience._forwarding); the generic *args/**kwargs wrappers below are the fallback.
_SYNC_BODY = """\
if _bt_key in _bt_queues or not _bt_fast(_bt_key, _bt_cost):
    _bt_acquire(_bt_key, _bt_cost)
return _bt_fn({args})"""
_ASYNC_BODY = """\
if (_bt_queues and _bt_key in _bt_queues) or not _bt_fast(_bt_key, _bt_cost):
    await _bt_acquire(_bt_key, _bt_cost, None)
return await _bt_fn({args})"""
_SYNC_KEYED_BODY = """\
_bt_k = _bt_key_fn({args})
if _bt_k in _bt_queues or not _bt_fast(_bt_k, _bt_cost):
    _bt_acquire(_bt_k, _bt_cost)
return _bt_fn({args})"""
_ASYNC_KEYED_BODY = """\
_bt_k = _bt_key_fn({args})
if (_bt_queues and _bt_k in _bt_queues) or not _bt_fast(_bt_k, _bt_cost):
    await _bt_acquire(_bt_k, _bt_cost, None)
return await _bt_fn({args})"""


class RateLimiter(Policy):
    """A policy that admits calls through a :class:`Limiter`, waiting up to ``max_wait`` for room.

    Use it like every policy: ``@limiter`` on a ``def`` or ``async def``, ``limiter.call(fn,
    ...)``, ``await limiter.acall(fn, ...)``; or take units directly with :meth:`acquire` /
    :meth:`aacquire`. A refusal raises :class:`~buttress.errors.RateLimitedError` with
    ``retry_after`` and the refusing :class:`Decision` as ``.decision``, and emits
    :class:`LimitExceeded` when somebody listens.

    Waiting is fair: callers of one key that have to wait are admitted in arrival order (one
    queue for threads, one for asyncio tasks), and a newcomer never overtakes them. Only the
    head of a queue sleeps, for the decision's ``retry_after``, through the injected clock; a
    caller whose units cannot arrive within ``max_wait`` is refused at once rather than after
    waiting in vain. A :class:`Concurrency` rule cannot say when a slot frees, so its head polls
    every ``poll_interval`` seconds. A cancelled asyncio waiter leaves the queue.

    With a :class:`Concurrency` rule the units are released when the call returns, raises or is
    cancelled.

    Args:
        limiter: where the state lives (:class:`MemoryLimiter`, a Redis limiter, ...).
        key: the key of every call, or a function of the call's arguments that returns it
            (``lambda request: request.client_ip`` for a per-IP limit; a constant for a global one).
        cost: units each call takes (integer >= 1).
        max_wait: how long a call may wait for its units (seconds, >= 0, finite; 0: never wait).
        name: the policy name used in errors and events.
        clock: the clock that measures and performs the waiting.
        poll_interval: how often a waiting :class:`Concurrency` caller retries (seconds, > 0).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> from buttress.resilience.ratelimit import MemoryLimiter, RateLimiter, TokenBucket
        >>> per_user = RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=2)), key=lambda user: user)
        >>> @per_user
        ... def hello(user: str) -> str:
        ...     return f"hello {user}"
        >>> hello("ann"), hello("ann")
        ('hello ann', 'hello ann')
    """

    __slots__ = (
        "_aqueues",
        "_fast",
        "_key",
        "_key_fn",
        "_local",
        "_lock",
        "_queues",
        "clock",
        "cost",
        "limiter",
        "max_wait",
        "poll_interval",
        "releases",
    )

    limiter: Limiter
    cost: int
    max_wait: float
    clock: Clock
    poll_interval: float
    releases: bool
    """Whether admitted units are given back after each call (a :class:`Concurrency` rule)."""

    def __init__(
        self,
        limiter: Limiter,
        *,
        key: str | KeyFunction = "",
        cost: int = 1,
        max_wait: float = 0.0,
        name: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        poll_interval: float = 0.01,
    ) -> None:
        p = Problems("RateLimiter")
        if not callable(getattr(limiter, "try_acquire", None)):
            p.add(f"limiter must implement the Limiter protocol (got {limiter!r})")
        releases = isinstance(getattr(limiter, "rule", None), Concurrency)
        if releases and not callable(getattr(limiter, "release", None)):
            p.add(f"limiter has a Concurrency rule but no release() (got {limiter!r})")
        key_object: object = key
        if not (isinstance(key_object, str) or callable(key_object)):
            p.add(f"key must be a string or a function of the call's arguments (got {key!r})")
        p.int_at_least("cost", cost, 1)
        p.non_negative("max_wait", max_wait, allow_inf=False)
        p.positive("poll_interval", poll_interval, allow_inf=False)
        p.raise_if_any()
        super().__init__(name)
        self.limiter = limiter
        self.cost = cost
        self.max_wait = float(max_wait)
        self.clock = clock
        self.poll_interval = float(poll_interval)
        self.releases = releases
        self._key_fn: KeyFunction | None = None if isinstance(key, str) else key
        self._key = key if isinstance(key, str) else ""
        self._local = isinstance(limiter, MemoryLimiter)
        self._fast: Callable[[str, int], bool] | None = (
            limiter._admit if isinstance(limiter, MemoryLimiter) else None
        )
        self._lock = threading.Lock()
        self._queues: dict[str, deque[threading.Event]] = {}
        self._aqueues: dict[str, deque[asyncio.Future[None]]] = {}
        self._compose()

    # -- taking units directly ------------------------------------------------------------
    def _resolve(self, key: str | None, cost: int | None) -> tuple[str, int]:
        if key is None:
            if self._key_fn is not None:
                raise TypeError("this RateLimiter computes keys from call arguments: pass key= explicitly")
            key = self._key
        return key, self.cost if cost is None else cost

    def acquire(self, key: str | None = None, *, cost: int | None = None) -> Decision:
        """Take ``cost`` units for ``key``, waiting up to ``max_wait`` for them (thread-safe).

        Args:
            key: the key; defaults to the policy's constant key.
            cost: units to take; defaults to the policy's ``cost``.

        Returns:
            the admitting :class:`Decision`.

        Raises:
            RateLimitedError: if the units cannot be had within ``max_wait``.
            TypeError: if ``key`` is omitted and the policy's key is a function.
        """
        key, cost = self._resolve(key, cost)
        return self._acquire(key, cost)

    async def aacquire(self, key: str | None = None, *, cost: int | None = None) -> Decision:
        """:meth:`acquire` for asyncio tasks: waits with ``clock.asleep``, fair among tasks."""
        key, cost = self._resolve(key, cost)
        if self._local and key not in self._aqueues:
            decision = self.limiter.try_acquire(key, cost)
            if decision.allowed:
                return decision
            return await self._aacquire(key, cost, decision)
        return await self._aacquire(key, cost, None)

    def release(self, key: str | None = None, *, cost: int | None = None) -> None:
        """Give back units taken with :meth:`acquire` under a :class:`Concurrency` rule."""
        key, cost = self._resolve(key, cost)
        self.limiter.release(key, cost)  # type: ignore[attr-defined]

    async def arelease(self, key: str | None = None, *, cost: int | None = None) -> None:
        """:meth:`release` for asyncio code."""
        key, cost = self._resolve(key, cost)
        await self.limiter.arelease(key, cost)  # type: ignore[attr-defined]

    # -- refusing -------------------------------------------------------------------------
    def _refuse(self, key: str, cost: int, decision: Decision, waited: float) -> RateLimitedError:
        if self.events.listeners:
            self.events.emit(
                LimitExceeded(self.name, key, cost, decision.limit, decision.retry_after, waited)
            )
        label = self.name or "rate limiter"
        return RateLimitedError(
            f"{label} refused {cost} unit(s) for key {key!r}: retry after {decision.retry_after:.3f} s",
            policy=self.name or None,
            retry_after=decision.retry_after,
            decision=decision,
        )

    # -- the sync driver ------------------------------------------------------------------
    def _acquire(self, key: str, cost: int) -> Decision:
        if key not in self._queues:
            decision = self.limiter.try_acquire(key, cost)
            if decision.allowed:
                return decision
            if decision.retry_after > self.max_wait or not self.max_wait:
                raise self._refuse(key, cost, decision, 0.0)
        clock = self.clock
        start = clock.monotonic()
        deadline = start + self.max_wait
        me = threading.Event()
        with self._lock:
            queue = self._queues.setdefault(key, deque())
            queue.append(me)
            head = queue[0] is me
        try:
            if not head:
                # Waiters ahead of us all give up by their deadlines, which come before ours.
                me.wait()
            while True:
                decision = self.limiter.try_acquire(key, cost)
                if decision.allowed:
                    return decision
                now = clock.monotonic()
                left = deadline - now
                if decision.retry_after > left or left <= 0:
                    raise self._refuse(key, cost, decision, now - start)
                clock.sleep(min(decision.retry_after or self.poll_interval, left))
        finally:
            with self._lock:
                was_head = queue[0] is me
                queue.remove(me)
                if not queue:
                    del self._queues[key]
                elif was_head:
                    queue[0].set()

    # -- the asyncio driver ---------------------------------------------------------------
    async def _try(self, key: str, cost: int) -> Decision:
        if self._local:
            return self.limiter.try_acquire(key, cost)
        return await self.limiter.atry_acquire(key, cost)

    async def _aacquire(self, key: str, cost: int, decision: Decision | None) -> Decision:
        if decision is None and key not in self._aqueues:
            decision = await self._try(key, cost)
            if decision.allowed:
                return decision
        if decision is not None and (decision.retry_after > self.max_wait or not self.max_wait):
            raise self._refuse(key, cost, decision, 0.0)
        clock = self.clock
        start = clock.monotonic()
        deadline = start + self.max_wait
        me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            queue = self._aqueues.setdefault(key, deque())
            queue.append(me)
            head = queue[0] is me
        try:
            if not head:
                await me
            while True:
                decision = await self._try(key, cost)
                if decision.allowed:
                    return decision
                now = clock.monotonic()
                left = deadline - now
                if decision.retry_after > left or left <= 0:
                    raise self._refuse(key, cost, decision, now - start)
                await clock.asleep(min(decision.retry_after or self.poll_interval, left))
        finally:
            with self._lock:
                was_head = queue[0] is me
                queue.remove(me)
                if not queue:
                    del self._aqueues[key]
                elif was_head:
                    nxt = queue[0]
                    nxt.get_loop().call_soon_threadsafe(_wake, nxt)

    # -- the chains -----------------------------------------------------------------------
    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        acquire = self._acquire
        key_fn = self._key_fn
        const_key = self._key
        cost = self.cost
        fast = self._fast
        queues = self._queues
        release: Callable[[str, int], None] | None = (
            getattr(self.limiter, "release", None) if self.releases else None
        )

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            key = const_key if key_fn is None else key_fn(*args, **kwargs)
            if fast is None or key in queues or not fast(key, cost):
                acquire(key, cost)
            if release is None:
                return nxt(fn, args, kwargs)
            try:
                return nxt(fn, args, kwargs)
            finally:
                release(key, cost)

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        aacquire = self._aacquire
        key_fn = self._key_fn
        const_key = self._key
        cost = self.cost
        fast = self._fast
        queues = self._aqueues
        limiter: Any = self.limiter
        local = self._local
        releases = self.releases

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            key = const_key if key_fn is None else key_fn(*args, **kwargs)
            if fast is None or key in queues or not fast(key, cost):
                await aacquire(key, cost, None)
            if not releases:
                return await nxt(fn, args, kwargs)
            try:
                return await nxt(fn, args, kwargs)
            finally:
                if local:
                    limiter.release(key, cost)
                else:
                    await limiter.arelease(key, cost)

        return link

    # The decorator paths repeat the chain links with ``fn`` bound, which saves the one or two
    # coroutine frames of the generic wrapper: on the admitted path they are most of the cost.
    def _decorate_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self.releases or self._fast is None:
            return super()._decorate_sync(fn)
        return self._specialise(fn, is_async=False)

    def _decorate_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self.releases or self._fast is None:
            return super()._decorate_async(fn)
        return self._specialise(fn, is_async=True)

    def _specialise(self, fn: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
        env = {
            "_bt_fn": fn,
            "_bt_acquire": self._aacquire if is_async else self._acquire,
            "_bt_key_fn": self._key_fn,
            "_bt_key": self._key,
            "_bt_cost": self.cost,
            "_bt_fast": self._fast,
            "_bt_queues": self._aqueues if is_async else self._queues,
        }
        if self._key_fn is None:
            return specialise(fn, _ASYNC_BODY if is_async else _SYNC_BODY, env, is_async=is_async)
        # a key function takes the caller's arguments as they came: no exact parameters
        body = _ASYNC_KEYED_BODY if is_async else _SYNC_KEYED_BODY
        return specialise(fn, body, env, is_async=is_async, exact=False)

    def __repr__(self) -> str:
        return f"RateLimiter({self.limiter!r}, name={self.name!r}, max_wait={self.max_wait})"

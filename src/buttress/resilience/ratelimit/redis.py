"""Rate limiters whose state lives in Redis, shared by every process that uses the same keys.

Each decision is one ``EVALSHA`` of the rule's Lua script (loaded again transparently after
``NOSCRIPT``, e.g. when the server restarted); the script reads the server's ``TIME``, so the
clocks of the clients do not matter. Every key carries a TTL, and the key names of one limited
key share a hash tag, so the scripts run on Redis Cluster.

When Redis is unreachable or slower than ``timeout``, the limiter applies its fault policy
within the timeout: ``"fail_open"`` admits, ``"fail_closed"`` raises
:class:`LimiterUnavailableError`, ``"local"`` decides with an in-process
:class:`~buttress.resilience.ratelimit.MemoryLimiter` of the same rule. It emits
:class:`RedisUnavailable` once, leaves Redis alone for
``retry_interval`` seconds, then tries it again; the first success emits
:class:`RedisRecovered`. No redis-py exception reaches the caller.

This module imports redis-py (``pip install "buttress[redis]"``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import ButtressError
from buttress.events import EventPublisher
from buttress.resilience._timers import FIRED, Timers, current_task
from buttress.resilience.ratelimit._decision import Decision, make_decision
from buttress.resilience.ratelimit._events import RedisRecovered, RedisUnavailable
from buttress.resilience.ratelimit._memory import MemoryLimiter
from buttress.resilience.ratelimit._redis_io import AsyncRunner, SyncRunner
from buttress.resilience.ratelimit._redis_scripts import (
    Health,
    OnError,
    Plan,
    load_script,
    plan_for,
    validate_fault_options,
)
from buttress.resilience.ratelimit._rules import Concurrency, Rule

__all__ = [
    "AsyncRedisLimiter",
    "LimiterUnavailableError",
    "RedisLimiter",
    "RedisRecovered",
    "RedisUnavailable",
    "bounded_client",
]

_log = logging.getLogger("buttress.ratelimit")
_FAULTS = (RedisError, OSError)  # OSError includes TimeoutError, raised by _bounded
_HAS_DRIVER_INFO = importlib.util.find_spec("redis.driver_info") is not None
_RELEASE = load_script("buttress.resilience.ratelimit", "concurrency_release")
# The decision bound is real time on real I/O, so not the injected clock (a fake one may jump);
# the timers only use differences of it, as delays for the loop.
_loop_clock = time.monotonic


class LimiterUnavailableError(ButtressError):
    """Redis could not decide within the timeout and the limiter's policy is ``"fail_closed"``.

    ``retry_after`` says when the limiter will try Redis again; ``__cause__`` is the redis-py
    error (absent while the limiter is waiting out ``retry_interval`` without trying).
    """


def _bounded_kwargs(
    kwargs: dict[str, Any], timeout: float, retry: Any, *, bound_io: bool = True
) -> dict[str, Any]:
    kwargs = dict(kwargs)
    kwargs.update(
        socket_timeout=timeout if bound_io else None,
        socket_connect_timeout=timeout,
        retry=retry,
        retry_on_timeout=False,
        retry_on_error=[],
        health_check_interval=0,
    )
    # no CLIENT SETINFO round trips on connect: each would be one more wait on a hung server
    kwargs.pop("lib_name", None)
    kwargs.pop("lib_version", None)
    if _HAS_DRIVER_INFO:
        kwargs["driver_info"] = None
    else:  # pragma: no cover - redis-py < 7.1
        kwargs.update(lib_name=None, lib_version=None)
    return kwargs


def bounded_client(client: Any, timeout: float, *, bound_io: bool = True) -> tuple[Any, bool]:
    """A client for the same server whose every command is bounded by ``timeout``.

    redis-py retries failed commands with backoff by default, so a client's own socket timeout
    does not bound a call. For a plain ``Redis`` / ``redis.asyncio.Redis`` on a
    ``ConnectionPool`` this builds a small pool of its own (same address, credentials, TLS and
    decoding; ``timeout`` for connect and read, no retries) and returns ``(client, True)``.
    Any other client (Redis Cluster, Sentinel) is returned as it is, ``(client, False)``: build
    it with ``retry=Retry(NoBackoff(), 0)`` and socket timeouts yourself.

    ``bound_io=False`` leaves reads and writes of an asyncio pool without a socket timeout
    (connects keep ``timeout``): for a caller that bounds each whole call with its own
    :func:`asyncio.timeout`. redis-py runs every write of a client with a socket timeout
    through :func:`asyncio.wait_for`, one extra task per command, which is most of what a
    decision costs on top of the round trip; a cancelled read closes its connection.
    """
    pool: Any = getattr(client, "connection_pool", None)
    if isinstance(client, redis.asyncio.Redis) and type(pool) in (
        redis.asyncio.ConnectionPool,
        redis.asyncio.BlockingConnectionPool,
    ):
        from redis.asyncio.retry import Retry as AsyncRetry

        kwargs = _bounded_kwargs(
            pool.connection_kwargs, timeout, AsyncRetry(NoBackoff(), 0), bound_io=bound_io
        )
        new_pool = redis.asyncio.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        return redis.asyncio.Redis(connection_pool=new_pool), True
    if isinstance(client, redis.Redis) and type(pool) in (redis.ConnectionPool, redis.BlockingConnectionPool):
        kwargs = _bounded_kwargs(pool.connection_kwargs, timeout, Retry(NoBackoff(), 0))
        sync_pool = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        return redis.Redis(connection_pool=sync_pool), True
    return client, False


class _RedisLimiterBase:
    """What the sync and the asyncio limiter share: plans, keys, decisions and the fault policy."""

    __slots__ = (
        "_arunner",
        "_exact",
        "_health",
        "_lease_counter",
        "_lease_prefix",
        "_leases",
        "_local",
        "_now",
        "_plan",
        "_prefixes",
        "_routed",
        "_runner",
        "_timers",
        "clock",
        "events",
        "name",
        "on_error",
        "prefix",
        "retry_interval",
        "rule",
        "timeout",
    )

    rule: Rule
    """The default rule."""

    # Whether the client's own socket timeouts must bound reads and writes (sync code has
    # nothing else); the asyncio limiter bounds each decision on the event loop instead.
    _BOUND_IO = True

    def __init__(
        self,
        rule: Rule,
        client: Any,
        *,
        prefix: str = "buttress:rl:",
        on_error: OnError = "fail_open",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        overrides: Mapping[str, Rule] | None = None,
        name: str = "",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        validate_fault_options(type(self).__name__, on_error, timeout, retry_interval)
        self._plan = plan_for(rule)
        # the memory limiter checks the overrides (same kind as the rule), every problem at once;
        # it is also the "local" fault policy's limiter
        self._local = MemoryLimiter(rule, overrides=overrides, clock=clock)
        patterns = dict(overrides or {})
        self._exact = {k: plan_for(r) for k, r in patterns.items() if not k.endswith("*")}
        prefixes = [(k[:-1], plan_for(r)) for k, r in patterns.items() if k.endswith("*")]
        self._prefixes = tuple(sorted(prefixes, key=lambda item: len(item[0]), reverse=True))
        self._routed = bool(self._exact or self._prefixes)
        self.rule = rule
        self.prefix = prefix
        self.on_error = on_error
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.name = name
        self.clock = clock
        self._now = clock.monotonic
        self.events = EventPublisher()
        self._health = Health(self.retry_interval)
        bounded, owned = bounded_client(client, self.timeout, bound_io=self._BOUND_IO)
        if self._BOUND_IO:
            self._runner = SyncRunner(bounded, owned)
        else:
            self._arunner = AsyncRunner(bounded, owned)
        # Concurrency units this process holds, per key: Redis lease ids, or None for a unit
        # granted by the fault policy (released locally)
        self._leases: dict[str, list[str | None]] = {}
        self._lease_counter = itertools.count()
        self._lease_prefix = uuid.uuid4().hex[:16]
        # the asyncio limiter's shared deadline timer, made on first use on a loop
        self._timers: Timers | None = None

    @property
    def available(self) -> bool:
        """False while the limiter considers Redis down (since a fault, until a success)."""
        return self._health.down_since is None

    def _plan_for(self, key: str) -> Plan:
        plan = self._exact.get(key)
        if plan is not None:
            return plan
        for start, plan in self._prefixes:
            if key.startswith(start):
                return plan
        return self._plan

    def _lease_ids(self, plan: Plan, cost: int) -> tuple[str, ...]:
        if cost > plan.limit:
            return ()
        counter = self._lease_counter
        prefix = self._lease_prefix
        return tuple(f"{prefix}:{next(counter)}" for _ in range(cost))

    def _decision(self, plan: Plan, raw: Any, key: str, ids: tuple[str, ...]) -> Decision:
        # one string 'allowed remaining retry_after reset_after' (bytes, or str when the client
        # decodes): one bulk reply costs redis-py's parser far less than a four-item array
        flag, remaining, retry_after, reset_after = raw.split()
        allowed = flag == b"1" or flag == "1"
        if ids and allowed:
            self._leases.setdefault(key, []).extend(ids)
        if self._health.down_since is not None:
            self._recovered()
        return make_decision(
            allowed, plan.limit, int(remaining), float(retry_after), float(reset_after), plan.policy
        )

    def _recovered(self) -> None:
        downtime = self._health.recover(self._now())
        if downtime is not None:
            _log.info("limiter %r: Redis answers again after %.3gs", self.name, downtime)
            if self.events.listeners:
                self.events.emit(RedisRecovered(self.name, downtime))

    def _fault(self, key: str, cost: int, error: BaseException | None) -> Decision:
        """The decision of the fault policy (``error`` is None while Redis is left alone)."""
        health = self._health
        now = self._now()
        if error is not None and health.fail(error, now):
            _log.warning("limiter %r: Redis unavailable (%r); applying %s", self.name, error, self.on_error)
            if self.events.listeners:
                self.events.emit(RedisUnavailable(self.name, error, self.on_error))
        on_error = self.on_error
        if on_error == "fail_closed":
            retry_after = max(0.0, health.retry_at - now)
            message = f"rate limiter {self.name!r}: Redis is unavailable; retry after {retry_after:.3g}s"
            raise LimiterUnavailableError(message, policy=self.name, retry_after=retry_after) from (
                error if error is not None else health.last_error
            )
        if on_error == "local":
            decision = self._local.try_acquire(key, cost)
        else:
            plan = self._plan_for(key)
            decision = make_decision(True, plan.limit, max(0, plan.limit - cost), 0.0, 0.0, plan.policy)
        if decision.allowed and isinstance(self.rule, Concurrency):
            self._leases.setdefault(key, []).extend([None] * cost)
        return decision

    def _release_fault(self, error: BaseException) -> None:
        # An unreleased lease expires after Concurrency.lease seconds; nothing to raise.
        if self._health.fail(error, self._now()):
            _log.warning("limiter %r: Redis unavailable (%r) on release", self.name, error)
            if self.events.listeners:
                self.events.emit(RedisUnavailable(self.name, error, self.on_error))

    def _take_leases(self, key: str, cost: int) -> tuple[list[str], int]:
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        held = self._leases.get(key)
        ids: list[str] = []
        local = 0
        while held and len(ids) + local < cost:
            try:
                lease = held.pop()
            except IndexError:  # another thread took the last one
                break
            if lease is None:
                local += 1
            else:
                ids.append(lease)
        if held is not None and not held:
            self._leases.pop(key, None)
        if local:
            self._local.release(key, local)
        return ids, local

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.rule!r}, prefix={self.prefix!r}, on_error={self.on_error!r}, "
            f"timeout={self.timeout:g})"
        )


def _bad_cost(cost: object) -> ValueError:
    return ValueError(f"cost must be an integer >= 1 (got {cost!r})")


class RedisLimiter(_RedisLimiterBase):
    """A limiter on Redis for threaded code, with a sync ``redis.Redis`` client.

    Every process (and thread) using the same ``prefix``, rule name and key shares one limit.

    Args:
        rule: the rule for every key (:class:`~buttress.resilience.ratelimit.TokenBucket`,
            ``GCRA``, ``FixedWindow``, ``SlidingWindowLog``, ``SlidingWindowCounter``,
            ``Concurrency``).
        client: a ``redis.Redis``; the limiter opens its own connections to the same server
            with ``timeout`` on connect and read and no retries (see :func:`bounded_client`),
            one per decision in flight, and sends each ``EVALSHA`` straight down one of them.
            A ``RedisCluster`` is used as given: build it with ``retry=Retry(NoBackoff(), 0)``
            and socket timeouts.
        prefix: the start of every key name (keys look like ``{prefix}{{name:key}}:tb``).
        on_error: ``"fail_open"`` (admit), ``"fail_closed"`` (raise
            :class:`LimiterUnavailableError`) or ``"local"`` (decide in memory, same rule).
        timeout: seconds one decision may wait for Redis before the fault policy decides.
        retry_interval: seconds to leave Redis alone after a fault before trying it again.
        overrides: other rules for some keys, as for
            :class:`~buttress.resilience.ratelimit.MemoryLimiter` (``"vip:*"`` = prefix).
        name: identifies the limiter in events, logs and errors.
        clock: the time source of the fault policy (Redis keeps the limiting time).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example (not run here: it needs a server)::

        limiter = RedisLimiter(TokenBucket(rate=10, burst=20), redis.Redis(), on_error="local")
        if limiter.try_acquire(f"user:{user_id}").allowed:
            ...
    """

    __slots__ = ()

    def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """Admit (and consume) ``cost`` units for ``key`` now, or refuse; one ``EVALSHA``.

        Raises:
            ValueError: if ``cost`` is not an integer >= 1.
            LimiterUnavailableError: when Redis fails and ``on_error="fail_closed"``.
        """
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        health = self._health
        if health.down_since is not None and self._now() < health.retry_at:
            return self._fault(key, cost, None)
        plan = self._plan_for(key) if self._routed else self._plan
        ids = self._lease_ids(plan, cost) if plan.leases else ()
        command = plan.command(self.prefix, key, cost, ids)
        try:
            raw = self._runner.run(plan.script, command)
        except _FAULTS as exc:
            return self._fault(key, cost, exc)
        return self._decision(plan, raw, key, ids)

    async def atry_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """:meth:`try_acquire` in a worker thread (use :class:`AsyncRedisLimiter` in asyncio code)."""
        return await asyncio.to_thread(self.try_acquire, key, cost)

    def release(self, key: str = "", cost: int = 1) -> None:
        """Give back ``cost`` :class:`~buttress.resilience.ratelimit.Concurrency` units of ``key``.

        Units this process does not hold are ignored. If Redis cannot be reached the leases
        expire on their own after ``rule.lease`` seconds.
        """
        ids, _ = self._take_leases(key, cost)
        if not ids:
            return
        keys = self._plan_for(key).keys(self.prefix, key)
        try:
            self._runner.run(_RELEASE, ("EVALSHA", _RELEASE.sha, 1, keys[0], *ids))
        except _FAULTS as exc:
            self._release_fault(exc)

    async def arelease(self, key: str = "", cost: int = 1) -> None:
        """:meth:`release` in a worker thread."""
        await asyncio.to_thread(self.release, key, cost)

    def close(self) -> None:
        """Close the connections the limiter opened (a client passed as it is stays open)."""
        self._runner.close()


class AsyncRedisLimiter(_RedisLimiterBase):
    """A limiter on Redis for asyncio code, with a ``redis.asyncio.Redis`` client.

    The same arguments and behaviour as :class:`RedisLimiter`; each decision is bounded by
    ``timeout`` on the event loop as well, whatever the client's configuration. After
    a server restart the idle connections are stale: the limiter drops them and retries once,
    within the same timeout, so a restart is not mistaken for an outage. Its connections
    belong to the event loop they were opened on: use one limiter per loop, and ``aclose()``
    it before the loop ends.

    Example (not run here: it needs a server)::

        limiter = AsyncRedisLimiter(GCRA(limit=100, period=60), redis.asyncio.Redis())
        decision = await limiter.atry_acquire(client_ip)
    """

    __slots__ = ()
    _BOUND_IO = False

    def try_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """Not available: an asyncio client cannot answer sync code.

        Raises:
            TypeError: always; use :meth:`atry_acquire`, or :class:`RedisLimiter`.
        """
        raise TypeError("AsyncRedisLimiter decides with atry_acquire(); use RedisLimiter in sync code")

    async def atry_acquire(self, key: str = "", cost: int = 1) -> Decision:
        """Admit (and consume) ``cost`` units for ``key`` now, or refuse; one ``EVALSHA``.

        Raises:
            ValueError: if ``cost`` is not an integer >= 1.
            LimiterUnavailableError: when Redis fails and ``on_error="fail_closed"``.
        """
        if type(cost) is not int or cost < 1:
            raise _bad_cost(cost)
        health = self._health
        if health.down_since is not None and self._now() < health.retry_at:
            return self._fault(key, cost, None)
        plan = self._plan_for(key) if self._routed else self._plan
        ids = self._lease_ids(plan, cost) if plan.leases else ()
        command = plan.command(self.prefix, key, cost, ids)
        try:
            raw = await self._bounded(self._arunner.run(plan.script, command))
        except _FAULTS as exc:
            return self._fault(key, cost, exc)
        return self._decision(plan, raw, key, ids)

    async def _bounded(self, call: Coroutine[Any, Any, Any]) -> Any:
        """Await ``call`` for at most ``timeout`` seconds, else raise :class:`TimeoutError`.

        One shared loop timer serves every decision of the limiter on a loop (see
        :mod:`buttress.resilience._timers`), where ``asyncio.timeout`` would arm one per call.
        """
        loop = asyncio.get_running_loop()
        task = current_task(loop)
        if task is None:  # pragma: no cover - a coroutine driven by hand, outside any task
            call.close()
            raise RuntimeError("AsyncRedisLimiter must be awaited inside an asyncio task")
        timers = self._timers
        if timers is None or timers.loop is not loop:
            timers = self._timers = Timers(loop, _loop_clock)
        cancelling = task.cancelling()
        entry = timers.add(_loop_clock() + self.timeout, task)
        try:
            return await call
        except asyncio.CancelledError:
            # ours only if our timer fired and nobody else asked to cancel the task meanwhile
            if entry[FIRED] and task.uncancel() <= cancelling:
                entry[FIRED] = False
                raise TimeoutError(f"Redis did not answer within {self.timeout:g}s") from None
            raise
        finally:
            if entry[FIRED]:  # fired as the call completed: take our cancel request back
                task.uncancel()
            timers.done(entry)

    def release(self, key: str = "", cost: int = 1) -> None:
        """Not available: use :meth:`arelease`.

        Raises:
            TypeError: always.
        """
        raise TypeError("AsyncRedisLimiter releases with arelease(); use RedisLimiter in sync code")

    async def arelease(self, key: str = "", cost: int = 1) -> None:
        """Give back ``cost`` :class:`~buttress.resilience.ratelimit.Concurrency` units of ``key``.

        Units this process does not hold are ignored; if Redis cannot be reached the leases
        expire on their own after ``rule.lease`` seconds.
        """
        ids, _ = self._take_leases(key, cost)
        if not ids:
            return
        keys = self._plan_for(key).keys(self.prefix, key)
        try:
            await self._bounded(self._arunner.run(_RELEASE, ("EVALSHA", _RELEASE.sha, 1, keys[0], *ids)))
        except _FAULTS as exc:
            self._release_fault(exc)

    async def aclose(self) -> None:
        """Close the connections the limiter opened (a client passed as it is stays open)."""
        await self._arunner.aclose()

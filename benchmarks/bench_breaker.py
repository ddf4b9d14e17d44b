"""Circuit breakers, closed, success path: sync and async, against pybreaker, circuitbreaker,
purgatory and aiobreaker, each in its documented default configuration."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, cast

from benchmarks._common import async_target, expect_result, identity_op, probe_trips_after, sync_target
from benchmarks._harness import Contender, Table

_names = itertools.count()

_TRIPS = "trips after 5 consecutive failures"


def _unique(prefix: str) -> str:
    # purgatory keeps breakers by name in its unit of work: a fresh name is a fresh breaker
    return f"{prefix}-{next(_names)}"


def _pybreaker(fn: Callable[..., Any]) -> Callable[..., Any]:
    import pybreaker

    breaker = pybreaker.CircuitBreaker()
    return breaker(fn)


def _circuitbreaker(fn: Callable[..., Any]) -> Callable[..., Any]:
    from circuitbreaker import circuit

    return cast(Callable[..., Any], circuit(fn))


def _purgatory_sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    from purgatory import SyncCircuitBreakerFactory

    circuitbreaker = SyncCircuitBreakerFactory()
    return cast(Callable[..., Any], circuitbreaker(_unique("bench"))(fn))


def _purgatory_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    from purgatory import AsyncCircuitBreakerFactory

    circuitbreaker = AsyncCircuitBreakerFactory()
    return cast(Callable[..., Any], circuitbreaker(_unique("bench"))(fn))


def _aiobreaker(fn: Callable[..., Any]) -> Callable[..., Any]:
    from aiobreaker import CircuitBreaker

    breaker = CircuitBreaker()
    return cast(Callable[..., Any], breaker(fn))


def _buttress(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import CircuitBreaker

    breaker = CircuitBreaker()
    return breaker(fn)


def tables() -> list[Table]:
    """The sync and the async breaker tables."""
    sync_probe = probe_trips_after(5, is_async=False)
    async_probe = probe_trips_after(5, is_async=True)
    sync_table = Table(
        key="breaker-sync",
        group="breaker",
        title="1. Sync circuit breaker, closed, success path",
        description=(
            "One operation calls a decorated `def f(): return 42` through a closed breaker. Every "
            f"breaker is in its documented default configuration ({_TRIPS}, checked by a probe "
            "before timing). Baseline: the bare call `f()`."
        ),
        mode="sync",
        target=sync_target,
        make_op=identity_op,
        bare=sync_target,
        bare_label="bare call",
        verify=expect_result,
        contenders=(
            Contender(
                "pybreaker", "`breaker = CircuitBreaker()`, `@breaker`", "peer", _pybreaker,
                "pybreaker", sync_probe,
            ),
            Contender("circuitbreaker", "`@circuit`", "peer", _circuitbreaker, "circuitbreaker", sync_probe),
            Contender(
                "purgatory", '`cb = SyncCircuitBreakerFactory()`, `@cb("name")`', "peer", _purgatory_sync,
                "purgatory", sync_probe,
            ),
            Contender(
                "buttress", "`breaker = CircuitBreaker()`, `@breaker`", "buttress", _buttress, "buttress",
                sync_probe,
            ),
        ),
    )  # fmt: skip
    async_table = Table(
        key="breaker-async",
        group="breaker",
        title="2. Async circuit breaker, closed, success path",
        description=(
            "One operation awaits a decorated `async def f(): return 42` through a closed breaker, in "
            f"each breaker's documented default configuration ({_TRIPS}, checked by a probe). "
            "Baseline: a bare `await f()`."
        ),
        mode="async",
        target=async_target,
        make_op=identity_op,
        bare=async_target,
        bare_label="bare await",
        verify=expect_result,
        contenders=(
            Contender(
                "circuitbreaker", "`@circuit` on `async def`", "peer", _circuitbreaker, "circuitbreaker",
                async_probe,
            ),
            Contender(
                "purgatory", '`cb = AsyncCircuitBreakerFactory()`, `@cb("name")`', "peer", _purgatory_async,
                "purgatory", async_probe,
            ),
            Contender(
                "aiobreaker", "`breaker = CircuitBreaker()`, `@breaker`", "peer", _aiobreaker, "aiobreaker",
                async_probe,
            ),
            Contender(
                "buttress", "`breaker = CircuitBreaker()`, `@breaker`", "buttress", _buttress, "buttress",
                async_probe,
            ),
        ),
    )  # fmt: skip
    return [sync_table, async_table]

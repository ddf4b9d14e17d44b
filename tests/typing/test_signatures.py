"""Static checks, run by ``mypy --strict`` over tests/: decorators keep signatures.

The functions also run under pytest, so the runtime behaviour matches the static types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, assert_type

from buttress.resilience import AdaptiveThrottle, CircuitBreaker, Pipeline, Retry, Timeout, Zero


def test_sync_decorators_keep_signature() -> None:
    @Retry(attempts=2, backoff=Zero())
    def add(a: int, b: int = 1) -> int:
        return a + b

    @CircuitBreaker()
    def name(x: str) -> str:
        return x.upper()

    @AdaptiveThrottle()
    def half(x: float) -> float:
        return x / 2

    assert_type(add(1, b=2), int)
    assert_type(name("a"), str)
    assert_type(half(1.0), float)
    assert (add(1, b=2), name("a"), half(1.0)) == (3, "A", 0.5)


def test_async_decorators_keep_signature() -> None:
    pipeline = Pipeline(Timeout(1), Retry(attempts=2, backoff=Zero()), CircuitBreaker())

    @pipeline
    async def fetch(key: str, *, default: int = 0) -> int:
        return len(key) + default

    coro = fetch("abc", default=1)
    coro = assert_type(coro, Coroutine[Any, Any, int])
    coro.close()
    assert asyncio.run(fetch("abc", default=1)) == 4


def test_call_and_acall_infer_results() -> None:
    breaker = CircuitBreaker()

    def square(x: int) -> int:
        return x * x

    async def asquare(x: int) -> int:
        return x * x

    assert_type(breaker.call(square, 3), int)
    pending = breaker.acall(asquare, 3)
    pending = assert_type(pending, Coroutine[Any, Any, int])
    pending.close()
    assert breaker.call(square, 3) == 9
    assert asyncio.run(breaker.acall(asquare, 4)) == 16

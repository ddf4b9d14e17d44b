"""Targets, operations and semantic probes shared by the benchmark modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from benchmarks._harness import Op, Wrap

RESULT = 42
"""What every target returns; each timed operation checks it once before timing."""


def sync_target() -> int:
    """The function under a sync policy: a bare call of it is the sync baseline."""
    return RESULT


async def async_target() -> int:
    """The coroutine function under an async policy: a bare ``await`` of it is the async baseline."""
    return RESULT


def identity_op(guarded: Callable[..., Any]) -> Op:
    """The operation is the guarded function itself, called (or awaited) without arguments."""
    return guarded


def expect_result(result: Any) -> None:
    """The check of one success-path operation."""
    assert result == RESULT, f"expected {RESULT!r}, got {result!r}"


class Boom(ValueError):
    """The failure raised by probes' targets."""


def _count_calls(attempts: int, guarded: Callable[[], Any]) -> None:
    for _ in range(attempts):
        try:
            guarded()
        except Exception:
            pass


async def _acount_calls(attempts: int, guarded: Callable[[], Any]) -> None:
    for _ in range(attempts):
        try:
            await guarded()
        except Exception:
            pass


def probe_trips_after(failures: int, *, is_async: bool) -> Callable[[Wrap], None]:
    """A probe: after ``failures`` consecutive failures the breaker stops calling the target."""

    def probe(wrap: Wrap) -> None:
        calls = [0]

        def fail() -> None:
            calls[0] += 1
            raise Boom("probe")

        async def afail() -> None:
            calls[0] += 1
            raise Boom("probe")

        if is_async:
            asyncio.run(_acount_calls(failures + 3, wrap(afail)))
        else:
            _count_calls(failures + 3, wrap(fail))
        assert calls[0] == failures, (
            f"expected the breaker to open after {failures} failures, saw {calls[0]} calls"
        )

    return probe


def probe_attempts(
    attempts: int | None, *, is_async: bool, fail_first: int | None = None
) -> Callable[[Wrap], None]:
    """A probe of retry semantics, with the target failing ``fail_first`` times then succeeding.

    With ``attempts`` given, a target that always fails must be called exactly that many times and
    the call must raise. With ``fail_first`` given, the guarded call must return the target's result
    after exactly ``fail_first + 1`` calls. Only zero-wait configurations may use the first check.
    """

    def probe(wrap: Wrap) -> None:
        calls = [0]
        limit = [0]

        def target() -> int:
            calls[0] += 1
            if calls[0] <= limit[0]:
                raise Boom("probe")
            return RESULT

        async def atarget() -> int:
            return target()

        guarded = wrap(atarget if is_async else target)

        def once() -> Any:
            calls[0] = 0
            return asyncio.run(guarded()) if is_async else guarded()

        if fail_first is not None:
            limit[0] = fail_first
            result = once()
            assert result == RESULT, f"expected {RESULT!r} after {fail_first} failures, got {result!r}"
            assert calls[0] == fail_first + 1, f"expected {fail_first + 1} calls, saw {calls[0]}"
        if attempts is not None:
            limit[0] = 10**9
            try:
                once()
            except Exception:
                pass
            else:
                raise AssertionError("expected the call to fail once attempts ran out")
            assert calls[0] == attempts, f"expected exactly {attempts} attempts, saw {calls[0]}"

    return probe

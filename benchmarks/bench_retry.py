"""Retry decorators: the success path and "3 failures then success" with zero wait, sync and async,
against tenacity, stamina and backoff (and, for failures, a hand-written try/except loop)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from benchmarks._common import (
    RESULT,
    async_target,
    expect_result,
    identity_op,
    probe_attempts,
    sync_target,
)
from benchmarks._harness import TIMES, Contender, Mode, Op, Table, TableResult, fastest_peer_headline

ATTEMPTS = 4
FAILURES = 3

STAMINA_NOTE = (
    "- **stamina** runs in its default state: before each stamina contender is built the harness calls "
    "`stamina.set_testing(False)`, `stamina.set_active(True)` and "
    "`stamina.instrumentation.set_on_retry_hooks(None)` (which restores the default hooks; with neither "
    "structlog nor prometheus-client installed that is its standard-library `logging` hook, which logs a "
    "warning per scheduled retry). The only change is a `logging.NullHandler` on the `stamina` logger, so "
    "these records are still created but not written to the terminal by `logging.lastResort` — the same "
    "thing backoff does for its own `backoff` logger at import."
)


# -- peers ------------------------------------------------------------------------------------


def _stamina_defaults() -> Any:
    import stamina
    import stamina.instrumentation

    stamina.set_testing(False)
    stamina.set_active(True)
    stamina.instrumentation.set_on_retry_hooks(None)
    logger = logging.getLogger("stamina")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return stamina


def _tenacity_default(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tenacity

    return cast(Callable[..., Any], tenacity.retry(fn))


def _tenacity_stop4(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tenacity

    return cast(Callable[..., Any], tenacity.retry(stop=tenacity.stop_after_attempt(ATTEMPTS))(fn))


def _tenacity_zero(fn: Callable[..., Any]) -> Callable[..., Any]:
    import tenacity

    decorator = tenacity.retry(wait=tenacity.wait_none(), stop=tenacity.stop_after_attempt(ATTEMPTS))
    return cast(Callable[..., Any], decorator(fn))


def _stamina_default(fn: Callable[..., Any]) -> Callable[..., Any]:
    stamina = _stamina_defaults()
    return cast(Callable[..., Any], stamina.retry(on=Exception, attempts=ATTEMPTS)(fn))


def _stamina_zero(fn: Callable[..., Any]) -> Callable[..., Any]:
    stamina = _stamina_defaults()
    decorator = stamina.retry(on=Exception, attempts=ATTEMPTS, wait_initial=0, wait_max=0, wait_jitter=0)
    return cast(Callable[..., Any], decorator(fn))


def _backoff_default(fn: Callable[..., Any]) -> Callable[..., Any]:
    import backoff

    return backoff.on_exception(backoff.expo, Exception, max_tries=ATTEMPTS)(fn)


def _backoff_zero(fn: Callable[..., Any]) -> Callable[..., Any]:
    import backoff

    decorator = backoff.on_exception(backoff.constant, Exception, interval=0, max_tries=ATTEMPTS, jitter=None)
    return decorator(fn)


def _hand_loop(fn: Callable[..., Any]) -> Callable[..., Any]:
    def loop() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except Exception:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return loop


def _ahand_loop(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def loop() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await fn()
            except Exception:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return loop


def _hand_loop_sleeping(fn: Callable[..., Any]) -> Callable[..., Any]:
    # what the peers do between attempts with a zero wait: a real sleep(0)
    def loop() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except Exception:
                if attempt == ATTEMPTS:
                    raise
            time.sleep(0)
        raise AssertionError("unreachable")

    return loop


def _ahand_loop_sleeping(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def loop() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await fn()
            except Exception:
                if attempt == ATTEMPTS:
                    raise
            await asyncio.sleep(0)
        raise AssertionError("unreachable")

    return loop


# -- buttress ---------------------------------------------------------------------------------


def _buttress_default(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Retry

    return Retry(attempts=ATTEMPTS)(fn)


def _buttress_zero(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Retry
    from buttress.resilience.backoff import Zero

    return Retry(attempts=ATTEMPTS, backoff=Zero())(fn)


# -- tables -----------------------------------------------------------------------------------


def _success_table(mode: Mode) -> Table:
    is_async = mode == "async"
    probe = probe_attempts(None, is_async=is_async, fail_first=0)
    decorated = "`async def`" if is_async else "`def`"
    return Table(
        key=f"retry-success-{mode}",
        group="retry",
        title=f"{3 if not is_async else '3b'}. Retry decorator, successful call, {mode}",
        description=(
            f"One operation {'awaits' if is_async else 'calls'} a decorated {decorated} `f()` that returns "
            "at once, so no retry happens: this is the cost a retry decorator adds to every healthy call. "
            f"Baseline: a bare {'`await f()`' if is_async else 'call `f()`'}."
        ),
        mode=mode,
        target=async_target if is_async else sync_target,
        make_op=identity_op,
        bare=async_target if is_async else sync_target,
        bare_label="bare await" if is_async else "bare call",
        verify=expect_result,
        contenders=(
            Contender("tenacity (default)", "`@retry`", "peer", _tenacity_default, "tenacity", probe),
            Contender(
                "tenacity (4 attempts)", "`@retry(stop=stop_after_attempt(4))`", "peer", _tenacity_stop4,
                "tenacity", probe,
            ),
            Contender(
                "stamina", "`@stamina.retry(on=Exception, attempts=4)`", "peer", _stamina_default, "stamina",
                probe,
            ),
            Contender(
                "backoff", "`@backoff.on_exception(backoff.expo, Exception, max_tries=4)`", "peer",
                _backoff_default, "backoff", probe,
            ),
            Contender("buttress", "`@Retry(attempts=4)`", "buttress", _buttress_default, "buttress", probe),
        ),
    )  # fmt: skip


def _failure_headline(result: TableResult) -> list[str]:
    lines = fastest_peer_headline(result)
    ours = result.find("buttress")
    hand = [r for r in result.find("reference") if r.label == "hand loop"]
    if ours and hand:
        lines.append(
            f"buttress / hand loop = {ours[0].best_ns / hand[0].best_ns:.1f}{TIMES} "
            f"({ours[0].best_ns - hand[0].best_ns:,.0f} ns per operation on top of the hand-written loop)"
        )
    return lines


def _failure_table(mode: Mode) -> Table:
    is_async = mode == "async"
    # one counter for every contender: each operation resets it, the target counts its calls
    calls = [0]

    def flaky() -> int:
        calls[0] += 1
        if calls[0] <= FAILURES:
            raise ValueError("transient")
        return RESULT

    async def aflaky() -> int:
        calls[0] += 1
        if calls[0] <= FAILURES:
            raise ValueError("transient")
        return RESULT

    def make_op(guarded: Callable[..., Any]) -> Op:
        def op() -> Any:
            calls[0] = 0
            return guarded()

        return op

    def bare() -> Any:
        # the same bookkeeping, with the counter set so the one call succeeds
        calls[0] = FAILURES
        return flaky()

    def make_aop(guarded: Callable[..., Any]) -> Op:
        async def op() -> Any:
            calls[0] = 0
            return await guarded()

        return op

    async def abare() -> Any:
        calls[0] = FAILURES
        return await aflaky()

    def verify(result: Any) -> None:
        expect_result(result)
        assert calls[0] == FAILURES + 1, f"expected {FAILURES + 1} calls of the target, saw {calls[0]}"

    probe = probe_attempts(ATTEMPTS, is_async=is_async, fail_first=FAILURES)
    sleep_name = "asyncio.sleep(0)" if is_async else "time.sleep(0)"
    sleep_call = f"await {sleep_name}" if is_async else sleep_name
    return Table(
        key=f"retry-failures-{mode}",
        group="retry",
        title=f"{'4' if not is_async else '4b'}. Retry, 3 failures then success, zero wait, {mode}",
        description=(
            "One operation resets a call counter and calls the decorated target, which raises `ValueError` "
            "on its first 3 calls and then returns: 4 attempts, no waiting. Every contender is configured "
            "for zero wait and at most 4 attempts (a probe checks that an always-failing target is called "
            "exactly 4 times). Baseline: the same bookkeeping (one counter store) and one successful call "
            f"of the target{', awaited' if is_async else ''}. The hand loop is a plain `for`/`try`/`except` "
            "over 4 attempts. With a zero wait tenacity, stamina and backoff still call "
            f"`{sleep_name}` between attempts; the row \"hand loop + {sleep_name}\" shows what those "
            "three sleeps alone cost here. buttress, like the hand loop, skips a zero delay (its "
            "documented behaviour)."
        ),
        mode=mode,
        target=aflaky if is_async else flaky,
        make_op=make_aop if is_async else make_op,
        bare=abare if is_async else bare,
        bare_label="bare (bookkeeping + 1 call)",
        verify=verify,
        contenders=(
            Contender(
                "tenacity", "`@retry(wait=wait_none(), stop=stop_after_attempt(4))`", "peer", _tenacity_zero,
                "tenacity", probe,
            ),
            Contender(
                "stamina",
                "`@stamina.retry(on=Exception, attempts=4, wait_initial=0, wait_max=0, wait_jitter=0)`",
                "peer", _stamina_zero, "stamina", probe,
            ),
            Contender(
                "backoff",
                "`@backoff.on_exception(backoff.constant, Exception, interval=0, max_tries=4, jitter=None)`",
                "peer", _backoff_zero, "backoff", probe,
            ),
            Contender(
                "hand loop", "`for` 4 attempts, `try`/`except Exception`", "reference",
                _ahand_loop if is_async else _hand_loop, None, probe,
            ),
            Contender(
                f"hand loop + {sleep_name}", f"the hand loop, `{sleep_call}` between attempts",
                "reference", _ahand_loop_sleeping if is_async else _hand_loop_sleeping, None, probe,
            ),
            Contender(
                "buttress", "`@Retry(attempts=4, backoff=Zero())`", "buttress", _buttress_zero, "buttress",
                probe,
            ),
        ),
        headline=_failure_headline,
    )  # fmt: skip


def tables() -> list[Table]:
    """Success path sync and async, then 3 failures with zero wait sync and async."""
    return [
        _success_table("sync"),
        _success_table("async"),
        _failure_table("sync"),
        _failure_table("async"),
    ]

"""A pipeline of timeout, retry and breaker on the async success path, against the same three
policies stacked by hand as decorators, and against each policy alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks._common import async_target, expect_result, identity_op, probe_attempts
from benchmarks._harness import TIMES, Contender, Table, TableResult, compare

TIMEOUT = 1.0
ATTEMPTS = 4


def _pipeline(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import CircuitBreaker, Pipeline, Retry, Timeout
    from buttress.resilience.backoff import Zero

    return Pipeline(Timeout(TIMEOUT), Retry(attempts=ATTEMPTS, backoff=Zero()), CircuitBreaker())(fn)


def _stacked(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import CircuitBreaker, Retry, Timeout
    from buttress.resilience.backoff import Zero

    return Timeout(TIMEOUT)(Retry(attempts=ATTEMPTS, backoff=Zero())(CircuitBreaker()(fn)))


def _timeout(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Timeout

    return Timeout(TIMEOUT)(fn)


def _retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import Retry
    from buttress.resilience.backoff import Zero

    return Retry(attempts=ATTEMPTS, backoff=Zero())(fn)


def _breaker(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience import CircuitBreaker

    return CircuitBreaker()(fn)


def _headline(result: TableResult) -> list[str]:
    pipeline, stacked, parts = result.find("buttress"), result.find("reference"), result.find("part")
    if not pipeline or not stacked or len(parts) != 3:
        return ["pipeline figures: n/a (a contender was not measured)"]
    bare = result.bare.best_ns
    ours = pipeline[0].best_ns
    parts_overhead = sum(p.best_ns - bare for p in parts)
    lines = [
        compare("the pipeline", ours, "the same policies stacked by hand", stacked[0].best_ns),
        f"pipeline: {ours:,.0f} ns per operation, {ours / bare:.1f}{TIMES} the bare await",
        f"sum of its parts (bare + each policy's overhead alone): {bare + parts_overhead:,.0f} ns; "
        f"pipeline / sum of parts = {ours / (bare + parts_overhead):.2f}{TIMES}",
    ]
    if parts_overhead > 0:
        lines.append(
            f"pipeline overhead / sum of the parts' overheads = {(ours - bare) / parts_overhead:.2f}{TIMES} "
            f"({ours - bare:,.0f} ns vs {parts_overhead:,.0f} ns)"
        )
    return lines


def tables() -> list[Table]:
    """The async pipeline table."""
    retries = probe_attempts(ATTEMPTS, is_async=True, fail_first=ATTEMPTS - 1)
    once = probe_attempts(1, is_async=True, fail_first=0)
    config = "`Timeout(1.0)`, `Retry(attempts=4, backoff=Zero())`, `CircuitBreaker()`"
    return [
        Table(
            key="pipeline-async",
            group="pipeline",
            title="5. Pipeline (timeout, retry, breaker), async, success path",
            description=(
                "One operation awaits `async def f(): return 42` through a timeout of 1 s, a retry of 4 "
                "attempts with zero wait and a closed circuit breaker (outermost first). The pipeline "
                "is compared with the same three policies stacked by hand as decorators, and with each "
                "policy alone; \"sum of its parts\" is the bare await plus each policy's own overhead "
                "over the bare await. Baseline: a bare `await f()`."
            ),
            mode="async",
            target=async_target,
            make_op=identity_op,
            bare=async_target,
            bare_label="bare await",
            verify=expect_result,
            contenders=(
                Contender("Pipeline", f"`@Pipeline({config.replace('`', '')})`", "buttress", _pipeline,
                          "buttress", retries),
                Contender("stacked by hand", "`@Timeout(1.0)` `@Retry(...)` `@CircuitBreaker()`", "reference",
                          _stacked, "buttress", retries),
                Contender("Timeout alone", "`@Timeout(1.0)`", "part", _timeout, "buttress", once),
                Contender("Retry alone", "`@Retry(attempts=4, backoff=Zero())`", "part", _retry, "buttress",
                          retries),
                Contender("CircuitBreaker alone", "`@CircuitBreaker()`", "part", _breaker, "buttress", once),
            ),
            headline=_headline,
        )
    ]  # fmt: skip

"""The demo's rate-limited section: many callers share one token bucket in front of a dependency.

Every caller loops as fast as it can. A :class:`~buttress.resilience.ratelimit.RateLimiter`
admits at most ``rate`` calls per second (after a burst of ``burst``), lets a refused caller
wait up to ``max_wait`` for its turn, and otherwise refuses with ``retry_after``, which the
caller honours before it tries again. The section reports what reached the dependency per
second, next to the limit, and the ``RateLimit`` headers an HTTP service would send.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import RateLimitedError
from buttress.resilience.ratelimit import MemoryLimiter, RateLimiter, TokenBucket

__all__ = ["RateLimitResult", "rate_limit_lines", "run_rate_limit_section"]


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """What the rate-limited section measured.

    Attributes:
        rate: the limit, in calls per second.
        burst: the bucket's capacity.
        duration: seconds the section was asked to run.
        elapsed: seconds it really ran (callers finish the call they are in).
        per_second: calls that reached the dependency in each whole second.
        admitted: calls admitted in all.
        refused: calls refused (``RateLimitedError``) in all.
        headers: the ``RateLimit`` headers of the last refusal (empty if none).
    """

    rate: float
    burst: int
    duration: float
    elapsed: float
    per_second: tuple[int, ...]
    admitted: int
    refused: int
    headers: dict[str, str]


async def run_rate_limit_section(
    *, callers: int, rate: float = 200.0, burst: int = 20, duration: float = 2.0, clock: Clock = SYSTEM_CLOCK
) -> RateLimitResult:
    """Run ``callers`` tasks through one token bucket for ``duration`` seconds of ``clock`` time."""
    limiter = RateLimiter(
        MemoryLimiter(TokenBucket(rate=rate, burst=burst), clock=clock),
        max_wait=0.02,
        name="demo-ratelimit",
        clock=clock,
    )
    start = clock.monotonic()
    end = start + duration
    seconds = max(1, math.ceil(duration))
    per_second = [0] * seconds
    counts = {"refused": 0}
    last_headers: dict[str, str] = {}

    @limiter
    async def dependency() -> None:
        index = int(clock.monotonic() - start)
        per_second[min(index, seconds - 1)] += 1  # a call finishing just after the end counts in the last
        await clock.asleep(0)

    async def caller() -> None:
        while clock.monotonic() < end:
            try:
                await dependency()
            except RateLimitedError as error:
                counts["refused"] += 1
                if error.decision is not None:
                    last_headers.update(error.decision.headers())
                # A good client honours retry_after instead of hammering the limiter.
                await clock.asleep(min(error.retry_after or 0.01, 0.1))

    await asyncio.gather(*(caller() for _ in range(callers)))
    return RateLimitResult(
        rate=rate,
        burst=burst,
        duration=duration,
        elapsed=clock.monotonic() - start,
        per_second=tuple(per_second),
        admitted=sum(per_second),
        refused=counts["refused"],
        headers=dict(last_headers),
    )


def rate_limit_lines(result: RateLimitResult, callers: int) -> list[str]:
    """The section as printed: a line per second and the headers of a refusal.

    Example:
        >>> r = RateLimitResult(200.0, 20, 2.0, 2.0, (219, 200), 419, 900, {"RateLimit": '"default";r=0;t=1'})
        >>> print("\\n".join(rate_limit_lines(r, 50)))
        <BLANKLINE>
        rate limiting: 50 callers share TokenBucket(rate=200/s, burst=20); refused callers honour retry_after
          second 1: 219 calls reached the dependency (limit 200/s + burst 20)
          second 2: 200 calls reached the dependency (limit 200/s)
          admitted 419, refused 900; a refusal's headers: RateLimit: "default";r=0;t=1
    """
    lines = [
        "",
        f"rate limiting: {callers} callers share TokenBucket(rate={result.rate:g}/s, burst={result.burst}); "
        "refused callers honour retry_after",
    ]
    for index, count in enumerate(result.per_second):
        extra = f" + burst {result.burst}" if index == 0 else ""
        lines.append(
            f"  second {index + 1}: {count} calls reached the dependency (limit {result.rate:g}/s{extra})"
        )
    headers = "; ".join(f"{name}: {value}" for name, value in result.headers.items())
    lines.append(
        f"  admitted {result.admitted}, refused {result.refused}; a refusal's headers: {headers or '-'}"
    )
    return lines

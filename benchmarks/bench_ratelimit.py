"""In-memory rate limiters on the admitted path: one key and 10 000 keys (sync), and async
acquisition, against limits (MemoryStorage with its fixed window, moving window and sliding
window counter strategies), pyrate-limiter (in-memory bucket) and aiolimiter.

Like is compared with like: the headline row of each sync table is buttress's
``try_acquire_fast`` (a ``bool``, like ``limits``' ``hit()`` and pyrate-limiter's
``try_acquire``); the rows marked *reference* show buttress's full ``try_acquire`` (a
``Decision`` with remaining / retry_after / reset_after) and the other algorithms. The async
table times "admit, then await the function": buttress's decorator against aiolimiter's
``async with`` and ``await acquire()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from benchmarks._common import RESULT, async_target, expect_result, identity_op
from benchmarks._harness import Contender, Op, Table, Wrap

HUGE = 10**9  # a limit never reached while timing: every operation is admitted
KEYS = [f"user:{i}" for i in range(10_000)]
PROBE_LIMIT = 5

Check = Callable[[str], Any]
Factory = Callable[[int], Check]


def _buttress(rule_name: str, *, full: bool = False) -> Factory:
    def make(limit: int) -> Check:
        from buttress.resilience import ratelimit as rl

        rules: dict[str, Any] = {
            "fixed": rl.FixedWindow(limit=limit, window=60),
            "counter": rl.SlidingWindowCounter(limit=limit, window=60),
            "log": rl.SlidingWindowLog(limit=limit, window=60),
            "bucket": rl.TokenBucket(rate=limit / 60, burst=limit),
            "gcra": rl.GCRA(limit=limit, period=60),
        }
        limiter = rl.MemoryLimiter(rules[rule_name], max_keys=20_000)
        if full:
            return lambda key: limiter.try_acquire(key).allowed
        return limiter.try_acquire_fast

    return make


def _limits(strategy: str) -> Factory:
    def make(limit: int) -> Check:
        import limits
        from limits import strategies
        from limits.storage import MemoryStorage

        cls = getattr(strategies, strategy)
        limiter = cls(MemoryStorage())
        item = limits.RateLimitItemPerMinute(limit)
        return lambda key: limiter.hit(item, key)

    return make


def _pyrate(limit: int) -> Check:
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(limit, Duration.MINUTE)]))
    return lambda key: limiter.try_acquire(key, blocking=False)


def _probe(make: Factory) -> None:
    check = make(PROBE_LIMIT)
    admitted = [bool(check("probe")) for _ in range(PROBE_LIMIT + 3)]
    assert admitted == [True] * PROBE_LIMIT + [False] * 3, (
        f"expected exactly {PROBE_LIMIT} admitted: {admitted}"
    )


def _contender(label: str, config: str, role: Any, make: Factory, dist: str, keys: list[str]) -> Contender:
    def wrap(_: Callable[..., Any]) -> Callable[..., Any]:
        check = make(HUGE)
        if len(keys) == 1:
            key = keys[0]
            return lambda: check(key)
        cycle = itertools.cycle(keys)
        return lambda: check(next(cycle))

    return Contender(label, config, role, wrap, dist, lambda _wrap: _probe(make))


def _expect_admitted(result: Any) -> None:
    assert result is True, f"expected an admission (True), got {result!r}"


def _sync_table(key: str, title: str, keys: list[str]) -> Table:
    cycle = itertools.cycle(keys)
    if len(keys) == 1:
        bare: Op = lambda: True  # noqa: E731
        what = "checks one key"
    else:
        bare = lambda: next(cycle) is not None  # noqa: E731
        what = "checks the next of 10 000 keys (round robin; every contender pays the same `next()`)"
    rows = (
        ("buttress fixed window", "`MemoryLimiter(FixedWindow(..)).try_acquire_fast(k)` (bool)", "buttress",
         _buttress("fixed"), "buttress"),
        ("buttress fixed window, Decision", "`try_acquire(key)` (full `Decision`)", "reference",
         _buttress("fixed", full=True), "buttress"),
        ("buttress sliding window counter", "`SlidingWindowCounter`, `try_acquire_fast` (bool)", "reference",
         _buttress("counter"), "buttress"),
        ("buttress sliding window log", "`SlidingWindowLog`, `try_acquire_fast` (bool)", "reference",
         _buttress("log"), "buttress"),
        ("buttress token bucket", "`TokenBucket`, `try_acquire_fast` (bool)", "reference",
         _buttress("bucket"), "buttress"),
        ("buttress GCRA", "`GCRA`, `try_acquire_fast` (bool)", "reference", _buttress("gcra"), "buttress"),
        ("buttress GCRA, Decision", "`GCRA`, `try_acquire` (full `Decision`)", "reference",
         _buttress("gcra", full=True), "buttress"),
        ("limits fixed window", "`FixedWindowRateLimiter(MemoryStorage()).hit(item, key)` (bool)", "peer",
         _limits("FixedWindowRateLimiter"), "limits"),
        ("limits moving window", "`MovingWindowRateLimiter(MemoryStorage()).hit(item, key)` (bool)", "peer",
         _limits("MovingWindowRateLimiter"), "limits"),
        ("limits sliding window counter", "`SlidingWindowCounterRateLimiter(MemoryStorage()).hit(..)`",
         "peer", _limits("SlidingWindowCounterRateLimiter"), "limits"),
        ("pyrate-limiter", "`Limiter(InMemoryBucket([Rate(n, MINUTE)])).try_acquire(k, blocking=False)`",
         "peer", _pyrate, "pyrate-limiter"),
    )  # fmt: skip
    return Table(
        key=key,
        group="ratelimit",
        title=title,
        description=(
            f"One operation {what} against an in-memory limit of 10^9 per minute, so every check is "
            "admitted. A probe first checks that each contender admits exactly 5 of 8 calls under a "
            "limit of 5. Rows marked reference are other buttress algorithms and the full-`Decision` API."
        ),
        mode="sync",
        target=lambda: RESULT,
        make_op=identity_op,
        bare=bare,
        bare_label="bare `True`" if len(keys) == 1 else "bare `next(keys)`",
        verify=_expect_admitted,
        contenders=tuple(_contender(*row, keys=keys) for row in rows),
    )


def _buttress_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience.ratelimit import MemoryLimiter, RateLimiter, TokenBucket

    return RateLimiter(MemoryLimiter(TokenBucket(rate=HUGE / 60, burst=HUGE)))(fn)


def _buttress_aacquire(fn: Callable[..., Any]) -> Callable[..., Any]:
    from buttress.resilience.ratelimit import MemoryLimiter, RateLimiter, TokenBucket

    policy = RateLimiter(MemoryLimiter(TokenBucket(rate=HUGE / 60, burst=HUGE)))

    async def op() -> Any:
        await policy.aacquire()
        return await fn()

    return op


def _aiolimiter_with(fn: Callable[..., Any]) -> Callable[..., Any]:
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(HUGE, 60)

    async def op() -> Any:
        async with limiter:
            return await fn()

    return op


def _aiolimiter_acquire(fn: Callable[..., Any]) -> Callable[..., Any]:
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(HUGE, 60)

    async def op() -> Any:
        await limiter.acquire()
        return await fn()

    return op


def _async_probe(wrap: Wrap) -> None:
    import asyncio

    asyncio.run(_run_twice(wrap(async_target)))


async def _run_twice(op: Callable[[], Any]) -> None:
    assert await op() == RESULT and await op() == RESULT


def tables() -> list[Table]:
    """The one-key, 10 000-key and async tables."""
    async_table = Table(
        key="ratelimit-async",
        group="ratelimit",
        title="Async rate limiter: admit, then await the function",
        description=(
            "One operation takes one unit from an in-memory limit of 10^9 per minute (always "
            "admitted), then awaits `async def f(): return 42`. buttress: a `RateLimiter` over a "
            "`MemoryLimiter(TokenBucket)` used as a decorator; aiolimiter: `AsyncLimiter(10**9, 60)` "
            "with `async with` and with `await acquire()`. Baseline: a bare `await f()`."
        ),
        mode="async",
        target=async_target,
        make_op=identity_op,
        bare=async_target,
        bare_label="bare await",
        verify=expect_result,
        contenders=(
            Contender("buttress", "`@RateLimiter(MemoryLimiter(TokenBucket(..)))`", "buttress",
                      _buttress_async, "buttress", _async_probe),
            Contender("buttress aacquire", "`await policy.aacquire()` (full `Decision`), then `await f()`",
                      "reference", _buttress_aacquire, "buttress", _async_probe),
            Contender("aiolimiter async with", "`async with AsyncLimiter(...)`: `await f()`", "peer",
                      _aiolimiter_with, "aiolimiter", _async_probe),
            Contender("aiolimiter acquire", "`await limiter.acquire()`, then `await f()`", "peer",
                      _aiolimiter_acquire, "aiolimiter", _async_probe),
        ),
    )  # fmt: skip
    return [
        _sync_table("ratelimit-one-key", "In-memory rate limit check, one key", ["user:1"]),
        _sync_table("ratelimit-10k-keys", "In-memory rate limit check, 10 000 keys", KEYS),
        async_table,
    ]

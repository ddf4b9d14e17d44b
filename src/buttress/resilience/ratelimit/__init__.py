"""Rate limiting: rules, sans-IO algorithms, an in-memory limiter, and the policy that waits.

The Redis limiters (``RedisLimiter``, ``AsyncRedisLimiter``, ``LimiterUnavailableError``) are
imported on first use, so ``import buttress`` never imports redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.resilience.ratelimit._decision import Decision
from buttress.resilience.ratelimit._events import LimitExceeded, RedisRecovered, RedisUnavailable
from buttress.resilience.ratelimit._limiter import Limiter, ReleasingLimiter
from buttress.resilience.ratelimit._memory import MemoryLimiter
from buttress.resilience.ratelimit._policy import RateLimiter
from buttress.resilience.ratelimit._rules import (
    GCRA,
    Concurrency,
    FixedWindow,
    Rule,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)

if TYPE_CHECKING:
    from buttress.resilience.ratelimit.redis import AsyncRedisLimiter, LimiterUnavailableError, RedisLimiter

__all__ = [
    "GCRA",
    "AsyncRedisLimiter",
    "Concurrency",
    "Decision",
    "FixedWindow",
    "LimitExceeded",
    "Limiter",
    "LimiterUnavailableError",
    "MemoryLimiter",
    "RateLimiter",
    "RedisLimiter",
    "RedisRecovered",
    "RedisUnavailable",
    "ReleasingLimiter",
    "Rule",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
]

_LAZY = frozenset({"AsyncRedisLimiter", "LimiterUnavailableError", "RedisLimiter"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from buttress.resilience.ratelimit import redis

        return getattr(redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Resilience policies: retry and backoff, retry budgets, circuit breakers, adaptive throttling,
rolling windows, timeouts and pipelines. Standard library only."""

from buttress.resilience._policy import Policy
from buttress.resilience.backoff import (
    STOP,
    Backoff,
    Constant,
    DecorrelatedJitter,
    EqualJitter,
    Exponential,
    FullJitter,
    Stop,
    StopType,
    Zero,
    with_cancellation,
    with_max_retries,
)
from buttress.resilience.breaker import (
    AdaptiveThrottle,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    Counts,
    MemoryBreakerStore,
)
from buttress.resilience.budget import RetryBudget
from buttress.resilience.pipeline import Pipeline
from buttress.resilience.registry import Registry, default_registry
from buttress.resilience.retry import Attempt, Permanent, Retry, aretry_call, attempts_of, retry, retry_call
from buttress.resilience.timeout import Timeout
from buttress.resilience.window import OutcomeRing, RollingWindow, TimeOutcomeWindow

__all__ = [
    "STOP",
    "AdaptiveThrottle",
    "Attempt",
    "Backoff",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "Constant",
    "Counts",
    "DecorrelatedJitter",
    "EqualJitter",
    "Exponential",
    "FullJitter",
    "MemoryBreakerStore",
    "OutcomeRing",
    "Permanent",
    "Pipeline",
    "Policy",
    "Registry",
    "Retry",
    "RetryBudget",
    "RollingWindow",
    "Stop",
    "StopType",
    "TimeOutcomeWindow",
    "Timeout",
    "Zero",
    "aretry_call",
    "attempts_of",
    "default_registry",
    "retry",
    "retry_call",
    "with_cancellation",
    "with_max_retries",
]

"""Resilience policies: retry and backoff, retry budgets, circuit breakers, adaptive throttling,
rolling windows, timeouts and deadlines, bulkheads and adaptive concurrency limits, hedging,
fallback and pipelines. Standard library only."""

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
from buttress.resilience.bulkhead import Bulkhead
from buttress.resilience.concurrency import AIMDLimit, ConcurrencyLimit, GradientLimit, LimitAlgorithm
from buttress.resilience.deadline import Deadline, check_deadline, current_deadline, shrink, time_left
from buttress.resilience.fallback import Failure, Fallback
from buttress.resilience.hedge import Hedge, LatencyWindow, close_result
from buttress.resilience.pipeline import Pipeline
from buttress.resilience.registry import Registry, default_registry
from buttress.resilience.retry import Attempt, Permanent, Retry, aretry_call, attempts_of, retry, retry_call
from buttress.resilience.timeout import SyncMode, Timeout
from buttress.resilience.window import OutcomeRing, RollingWindow, TimeOutcomeWindow

__all__ = [
    "STOP",
    "AIMDLimit",
    "AdaptiveThrottle",
    "Attempt",
    "Backoff",
    "BreakerState",
    "BreakerStore",
    "Bulkhead",
    "CircuitBreaker",
    "ConcurrencyLimit",
    "Constant",
    "Counts",
    "Deadline",
    "DecorrelatedJitter",
    "EqualJitter",
    "Exponential",
    "Failure",
    "Fallback",
    "FullJitter",
    "GradientLimit",
    "Hedge",
    "LatencyWindow",
    "LimitAlgorithm",
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
    "SyncMode",
    "TimeOutcomeWindow",
    "Timeout",
    "Zero",
    "aretry_call",
    "attempts_of",
    "check_deadline",
    "close_result",
    "current_deadline",
    "default_registry",
    "retry",
    "retry_call",
    "shrink",
    "time_left",
    "with_cancellation",
    "with_max_retries",
]

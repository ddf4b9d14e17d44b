"""Circuit breakers: the classic three-state breaker and the SRE adaptive throttle."""

from buttress.resilience.breaker._model import TRANSITIONS, BreakerConfig, BreakerState, Counts, Totals
from buttress.resilience.breaker.adaptive import AdaptiveThrottle
from buttress.resilience.breaker.classic import CircuitBreaker
from buttress.resilience.breaker.store import (
    BreakerStore,
    MemoryBreakerStore,
    Permit,
    Rejection,
    Snapshot,
    Transition,
)

__all__ = [
    "TRANSITIONS",
    "AdaptiveThrottle",
    "BreakerConfig",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "Counts",
    "MemoryBreakerStore",
    "Permit",
    "Rejection",
    "Snapshot",
    "Totals",
    "Transition",
]

"""buttress: the toolkit production Python services are built on.

The top level re-exports the names most code needs; everything else lives in its ring's
package (``buttress.resilience``, ``buttress.events``, ``buttress.testing`` ...).
"""

from buttress._version import __version__
from buttress.clock import SYSTEM_CLOCK, Clock, SystemClock
from buttress.errors import (
    BulkheadFullError,
    ButtressError,
    ConfigurationError,
    OpenCircuitError,
    RateLimitedError,
    RetryError,
    TimeoutError,
)
from buttress.resilience import (
    AdaptiveThrottle,
    CircuitBreaker,
    Permanent,
    Pipeline,
    Registry,
    Retry,
    RetryBudget,
    Timeout,
    retry,
)

__all__ = [
    "SYSTEM_CLOCK",
    "AdaptiveThrottle",
    "BulkheadFullError",
    "ButtressError",
    "CircuitBreaker",
    "Clock",
    "ConfigurationError",
    "OpenCircuitError",
    "Permanent",
    "Pipeline",
    "RateLimitedError",
    "Registry",
    "Retry",
    "RetryBudget",
    "RetryError",
    "SystemClock",
    "Timeout",
    "TimeoutError",
    "__version__",
    "retry",
]

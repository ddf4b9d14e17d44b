"""One exception hierarchy for everything buttress raises.

Errors raised by *your* code pass through buttress policies unchanged; the classes here are
raised only when a policy itself refuses or gives up, and each says which policy did so and,
where it is known, when it makes sense to try again (``retry_after``, in seconds).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

__all__ = [
    "BulkheadFullError",
    "ButtressError",
    "ConfigurationError",
    "OpenCircuitError",
    "RateLimitedError",
    "RetryError",
    "TimeoutError",
]


class ButtressError(Exception):
    """Base class of every error raised by buttress itself.

    Attributes:
        policy: the name of the policy that raised it, or ``None`` for an anonymous policy.
        retry_after: seconds after which a new attempt may succeed, when known.
    """

    policy: str | None
    retry_after: float | None

    def __init__(self, message: str, *, policy: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.policy = policy
        self.retry_after = retry_after


class ConfigurationError(ButtressError, ValueError):
    """A policy or component was configured with values it cannot work with.

    It is a :class:`ValueError`, raised at construction, and lists *every* problem found, each
    naming the parameter, the bad value and what is allowed.

    Attributes:
        problems: one human-readable line per invalid parameter.
    """

    problems: tuple[str, ...]

    def __init__(self, owner: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        joined = "; ".join(self.problems)
        super().__init__(f"invalid {owner} configuration: {joined}", policy=None)


class OpenCircuitError(ButtressError):
    """A circuit breaker (or adaptive throttle) refused the call.

    Attributes:
        state: the breaker state that caused the refusal (``"open"`` or ``"half_open"``), or
            ``"throttled"`` for an adaptive throttle.
    """

    state: str

    def __init__(
        self,
        message: str,
        *,
        policy: str | None = None,
        retry_after: float | None = None,
        state: str = "open",
    ) -> None:
        super().__init__(message, policy=policy, retry_after=retry_after)
        self.state = state


class BulkheadFullError(ButtressError):
    """A bulkhead had no free slot and no room left in its queue."""


class RateLimitedError(ButtressError):
    """A rate limiter refused the call; ``retry_after`` says when capacity returns.

    Attributes:
        decision: the limiter's full decision (a ``buttress.resilience.ratelimit.Decision``:
            limit, remaining, reset_after and the ``RateLimit`` headers), when one was made.
    """

    decision: Any

    def __init__(
        self,
        message: str,
        *,
        policy: str | None = None,
        retry_after: float | None = None,
        decision: Any = None,
    ) -> None:
        super().__init__(message, policy=policy, retry_after=retry_after)
        self.decision = decision


class TimeoutError(ButtressError, builtins.TimeoutError):
    """A call took longer than its timeout and was cancelled.

    It is also a :class:`builtins.TimeoutError` (and so :class:`asyncio.TimeoutError`), so
    existing ``except TimeoutError`` handlers keep working.

    Attributes:
        timeout: the timeout, in seconds, that ran out.
    """

    timeout: float

    def __init__(self, message: str, *, policy: str | None = None, timeout: float) -> None:
        ButtressError.__init__(self, message, policy=policy, retry_after=None)
        self.timeout = timeout


class RetryError(ButtressError):
    """Retries ran out while the *result* (not an exception) still asked for another attempt.

    When the last attempt raised, the retry policy re-raises that exception unchanged instead;
    this error is for results rejected by a ``retry_if_result`` predicate.

    Attributes:
        attempts: how many attempts were made.
        last_result: the result of the final attempt.
        history: the outcome of every attempt, oldest first.
    """

    attempts: int
    last_result: Any
    history: tuple[Any, ...]

    def __init__(
        self,
        message: str,
        *,
        policy: str | None = None,
        attempts: int,
        last_result: Any,
        history: Sequence[Any] = (),
    ) -> None:
        super().__init__(message, policy=policy)
        self.attempts = attempts
        self.last_result = last_result
        self.history = tuple(history)

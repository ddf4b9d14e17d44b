"""The rules a limiter enforces: frozen, validated descriptions of *what* is limited.

A rule holds no state; the in-memory and Redis limiters keep the state and apply the same
arithmetic, which is pinned here so that both backends agree to the last unit. Time ``t`` is in
float seconds (Redis: server ``TIME`` as seconds with microsecond precision).

* :class:`TokenBucket` -- state ``(tokens, t_last)``; a new key starts full. ``tokens =
  min(burst, tokens + (t - t_last) * rate)``; allowed iff ``tokens + TOLERANCE >= cost``, then
  ``tokens -= cost`` (clamped at 0). ``remaining = floor(tokens + TOLERANCE)``; ``retry_after =
  (cost - tokens) / rate`` (``inf`` if ``cost > burst``); ``reset_after = (burst - tokens) / rate``.
* :class:`GCRA` -- ``T = period / limit``, ``tau = T * burst``; state TAT (new key: ``TAT = t``).
  ``new_tat = max(TAT, t) + T * cost``; allowed iff ``new_tat - t <= tau + TOLERANCE``, then
  ``TAT = new_tat``. ``remaining = max(0, floor((tau - (TAT_after - t)) / T + TOLERANCE))``
  with ``TAT_after`` the stored TAT, or ``max(TAT, t)`` when refused; ``retry_after = new_tat -
  tau - t`` (``inf`` if ``cost > burst``); ``reset_after = max(0, TAT_after - t)``.
* :class:`FixedWindow` -- ``w = floor(t / window)``; a count per ``(key, w)``; allowed iff
  ``count + cost <= limit``. ``remaining = limit - count_after``; ``reset_after = (w + 1) * window
  - t``; ``retry_after = 0`` when allowed, else ``reset_after`` (``inf`` if ``cost > limit``).
* :class:`SlidingWindowLog` -- one timestamp per admitted unit in ``(t - window, t]``; allowed iff
  ``len + cost <= limit``. ``remaining = limit - len_after``; ``retry_after = log[len - limit +
  cost - 1] + window - t`` (log ascending; ``inf`` if ``cost > limit``); ``reset_after = newest +
  window - t`` (0 when empty).
* :class:`SlidingWindowCounter` -- ``w = floor(t / window)``, ``f = (t - w * window) / window``,
  ``estimate = prev * (1 - f) + cur``; allowed iff ``estimate + cost <= limit + TOLERANCE``, then
  ``cur += cost``. ``remaining = max(0, floor(limit - estimate_after + TOLERANCE))``;
  ``reset_after = (w + 2) * window - t`` when ``prev`` or ``cur`` is non-zero, else 0.
  ``retry_after`` (refused): if ``cur + cost <= limit`` and ``prev > 0``, the estimate falls to
  ``limit - cost`` at ``f* = 1 - (limit - cost - cur) / prev``; when ``f* < 1`` the answer is
  ``(w + f*) * window - t``. Otherwise wait for the next window, where ``prev' = cur`` and ``cur' =
  0``: it is ``(w + 1) * window - t`` plus ``max(0, 1 - (limit - cost) / cur) * window`` (the
  estimate ``cur * (1 - f')`` must fall to ``limit - cost``). ``inf`` if ``cost > limit``.
* :class:`Concurrency` -- an in-flight count per key; allowed iff ``inflight + cost <= limit``;
  ``release(key, cost)`` when done. ``remaining = limit - inflight_after``; ``retry_after`` and
  ``reset_after`` are ``0.0`` (when a slot frees is unknowable; ``inf`` if ``cost > limit``).

``cost`` is an integer >= 1 (else :class:`ValueError`); a cost above the capacity is refused
with ``retry_after = inf``, it never raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from buttress._validation import Problems

__all__ = [
    "GCRA",
    "TOLERANCE",
    "Concurrency",
    "FixedWindow",
    "Rule",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
]

TOLERANCE = 1e-9
"""Slack, in units, for float comparisons: refilling ``1 / rate`` seconds must yield a whole
token even when the float arithmetic lands at 0.9999999999. The Redis scripts use the same."""


def _check_name(p: Problems, name: object) -> None:
    # The name is written inside a structured-field string in the RateLimit headers.
    if not isinstance(name, str) or not name or any(c in '"\\' or not (" " <= c <= "~") for c in name):
        p.add(f"name must be a non-empty printable ASCII string without quotes or backslashes (got {name!r})")


def _seconds_param(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _set_policy(rule: object, quota: int, window: float | None) -> None:
    name = getattr(rule, "name")  # noqa: B009 - the dataclasses share no base
    item = f'"{name}";q={quota}' if window is None else f'"{name}";q={quota};w={_seconds_param(window)}'
    object.__setattr__(rule, "_policy", item)


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate`` tokens per second.

    Smooth throughput with bursts up to ``burst``; the usual choice for API clients and
    per-user limits.

    Args:
        rate: tokens added per second (> 0, finite).
        burst: the bucket's capacity (integer >= 1); a new key starts full.
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> TokenBucket(rate=10, burst=20).policy_header()
        '"default";q=20;w=2'
    """

    rate: float
    burst: int
    name: str = "default"
    _policy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = Problems("TokenBucket")
        p.positive("rate", self.rate, allow_inf=False)
        p.int_at_least("burst", self.burst, 1)
        _check_name(p, self.name)
        p.raise_if_any()
        _set_policy(self, self.burst, self.burst / self.rate)

    @property
    def capacity(self) -> int:
        """The most units one key can hold (``Decision.limit``)."""
        return self.burst

    def policy_header(self) -> str:
        """This rule as an IETF ``RateLimit-Policy`` item (``w`` = seconds to refill fully)."""
        return self._policy


@dataclass(frozen=True, slots=True)
class GCRA:
    """The generic cell rate algorithm: ``limit`` per ``period``, evenly spaced, bursts of ``burst``.

    Equivalent to a leaky bucket used as a meter, with a single timestamp of state per key.

    Args:
        limit: units per ``period`` (integer >= 1).
        period: seconds (> 0, finite).
        burst: how many units may arrive at once (integer >= 1); defaults to ``limit``.
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.
    """

    limit: int
    period: float
    burst: int | None = None
    name: str = "default"
    _policy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = Problems("GCRA")
        p.int_at_least("limit", self.limit, 1)
        p.positive("period", self.period, allow_inf=False)
        if self.burst is not None:
            p.int_at_least("burst", self.burst, 1)
        _check_name(p, self.name)
        p.raise_if_any()
        _set_policy(self, self.limit, self.period)

    @property
    def capacity(self) -> int:
        """The burst size: the most units admitted at once (``Decision.limit``)."""
        return self.limit if self.burst is None else self.burst

    @property
    def emission_interval(self) -> float:
        """``T = period / limit``: the spacing between units at the sustained rate."""
        return self.period / self.limit

    def policy_header(self) -> str:
        """This rule as an IETF ``RateLimit-Policy`` item."""
        return self._policy


@dataclass(frozen=True, slots=True)
class _WindowRule:
    """The fields and checks the three window rules share (not a rule by itself)."""

    limit: int
    window: float
    name: str = "default"
    _policy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = Problems(type(self).__name__)
        p.int_at_least("limit", self.limit, 1)
        p.positive("window", self.window, allow_inf=False)
        _check_name(p, self.name)
        p.raise_if_any()
        _set_policy(self, self.limit, self.window)

    @property
    def capacity(self) -> int:
        """``limit`` (``Decision.limit``)."""
        return self.limit

    def policy_header(self) -> str:
        """This rule as an IETF ``RateLimit-Policy`` item."""
        return self._policy


@dataclass(frozen=True, slots=True)
class FixedWindow(_WindowRule):
    """At most ``limit`` units per aligned window of ``window`` seconds.

    The cheapest rule; allows up to ``2 * limit`` across a window boundary.

    Args:
        limit: units per window (integer >= 1).
        window: seconds (> 0, finite).
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.
    """


@dataclass(frozen=True, slots=True)
class SlidingWindowLog(_WindowRule):
    """Exactly at most ``limit`` units in any ``window`` seconds (a log of timestamps).

    Exact, at the price of memory proportional to ``limit`` per key.

    Args:
        limit: units per sliding window (integer >= 1).
        window: seconds (> 0, finite).
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.
    """


@dataclass(frozen=True, slots=True)
class SlidingWindowCounter(_WindowRule):
    """About ``limit`` units per sliding ``window``, estimated from two fixed-window counters.

    Two integers of state per key; the estimate weights the previous window by how much of it
    still overlaps the sliding window (the Cloudflare approach).

    Args:
        limit: units per window (integer >= 1).
        window: seconds (> 0, finite).
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.
    """


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most ``limit`` calls in flight per key; a slot is released when the call completes.

    Args:
        limit: calls in flight (integer >= 1).
        lease: seconds after which the Redis backend reclaims a slot whose holder vanished
            (> 0, finite); the in-memory limiter releases exactly, so it ignores it.
        name: the policy name written in the ``RateLimit`` headers.

    Raises:
        ConfigurationError: listing every invalid argument.
    """

    limit: int
    lease: float = 60.0
    name: str = "default"
    _policy: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = Problems("Concurrency")
        p.int_at_least("limit", self.limit, 1)
        p.positive("lease", self.lease, allow_inf=False)
        _check_name(p, self.name)
        p.raise_if_any()
        _set_policy(self, self.limit, None)

    @property
    def capacity(self) -> int:
        """``limit`` (``Decision.limit``)."""
        return self.limit

    def policy_header(self) -> str:
        """This rule as an IETF ``RateLimit-Policy`` item (no window: it limits concurrency)."""
        return self._policy


Rule = TokenBucket | GCRA | FixedWindow | SlidingWindowLog | SlidingWindowCounter | Concurrency
"""Any rule a limiter accepts."""

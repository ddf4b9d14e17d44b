"""A retry budget shared by many callers, so an outage cannot become a retry storm."""

from __future__ import annotations

import math
import threading
from datetime import timedelta

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock

__all__ = ["RetryBudget"]

_BUCKETS = 10


class RetryBudget:
    """Cap retries to a fraction of recent traffic plus a small floor rate.

    Over the last ``ttl`` seconds the budget allows
    ``min_per_second * ttl + ratio * requests`` retries, where ``requests`` counts first
    attempts (each :class:`~buttress.resilience.Retry` using the budget deposits one per
    call). It is Finagle's ``RetryBudget`` and the idea behind gRPC retry throttling and the
    AWS SDK retry quota: in normal operation every retry is allowed, but when most calls
    fail, the extra load from retries stays below ``ratio`` of the real traffic.

    Share one budget between every retry policy that calls the same dependency. It is safe
    to use from many threads and tasks.

    Args:
        ratio: retries allowed per request, in [0, 1000] (0.2 = up to 20 % extra load).
        min_per_second: retries allowed per second regardless of traffic, so that callers
            with little traffic can still retry.
        ttl: seconds over which requests and retries are remembered (kept in 10 buckets).
        clock: the time source.

    Example:
        >>> from buttress.testing import FakeClock
        >>> budget = RetryBudget(ratio=0.1, min_per_second=0, clock=FakeClock())
        >>> for _ in range(20):
        ...     budget.deposit()
        >>> [budget.try_spend() for _ in range(3)]
        [True, True, False]
    """

    __slots__ = ("_bucket_width", "_epochs", "_lock", "_now", "_requests", "_retries", "min_per_second",
                 "ratio", "ttl")  # fmt: skip

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        ttl: float | timedelta = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        ttl = seconds(ttl)
        p = Problems("RetryBudget")
        p.non_negative("ratio", ratio, allow_inf=False)
        if isinstance(ratio, int | float) and ratio > 1000:
            p.add(f"ratio must be <= 1000 (got {ratio!r})")
        p.non_negative("min_per_second", min_per_second, allow_inf=False)
        p.positive("ttl", ttl, allow_inf=False)
        p.raise_if_any()
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.ttl = ttl
        self._bucket_width = ttl / _BUCKETS
        self._now = clock.monotonic
        self._lock = threading.Lock()
        self._requests = [0] * _BUCKETS
        self._retries = [0] * _BUCKETS
        self._epochs = [-1] * _BUCKETS  # the bucket number each slot currently holds

    def _slot(self, epoch: int) -> int:
        slot = epoch % _BUCKETS
        if self._epochs[slot] != epoch:
            self._epochs[slot] = epoch
            self._requests[slot] = 0
            self._retries[slot] = 0
        return slot

    def _sums(self, epoch: int) -> tuple[int, int]:
        requests = retries = 0
        for slot in range(_BUCKETS):
            if epoch - self._epochs[slot] < _BUCKETS:
                requests += self._requests[slot]
                retries += self._retries[slot]
        return requests, retries

    def deposit(self) -> None:
        """Count one request (a first attempt)."""
        epoch = math.floor(self._now() / self._bucket_width)
        with self._lock:
            self._requests[self._slot(epoch)] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when the budget is exhausted."""
        epoch = math.floor(self._now() / self._bucket_width)
        with self._lock:
            slot = self._slot(epoch)
            requests, retries = self._sums(epoch)
            if retries + 1 > self.min_per_second * self.ttl + self.ratio * requests:
                return False
            self._retries[slot] += 1
            return True

    @property
    def balance(self) -> float:
        """Retries still allowed right now (may be fractional)."""
        epoch = math.floor(self._now() / self._bucket_width)
        with self._lock:
            requests, retries = self._sums(epoch)
        return max(0.0, self.min_per_second * self.ttl + self.ratio * requests - retries)

    def __repr__(self) -> str:
        return f"RetryBudget(ratio={self.ratio}, min_per_second={self.min_per_second}, ttl={self.ttl})"

"""Adaptive concurrency limits: learn how many calls a dependency takes at once from latency.

A fixed :class:`~buttress.resilience.Bulkhead` needs somebody to know the right size. The
limits here find it, as Netflix's ``concurrency-limits`` does (and TCP congestion control before
it): every finished call reports its latency (round-trip time) and how many calls were in flight
when it started, and a small algorithm moves the limit. When latency rises above its baseline,
requests are queueing somewhere downstream, so the limit shrinks and the excess is refused at
once with :class:`~buttress.errors.BulkheadFullError` instead of joining the queue; when latency
stays low while the limit is in use, the limit grows.

Two algorithms, both sans-IO (``update(rtt, inflight, dropped) -> limit``, no clock, no lock):

- :class:`AIMDLimit`: additive increase, multiplicative decrease. +1 per sample while at least
  half the limit is in use; ``x backoff_ratio`` when a call is dropped (timed out) or slower
  than ``timeout``. Simple and robust, but it reacts to timeouts, not to latency creeping up.
- :class:`GradientLimit`: Netflix's Gradient2. It compares the latest latency with a long-term
  exponential average; their ratio (the *gradient*, clamped to [0.5, 1]) scales the limit
  down as soon as latency rises, and a small ``queue_size`` of head-room lets it grow while
  latency is flat. It sheds load before latency collapses, without a fixed latency target.

:class:`ConcurrencyLimit` is the policy that drives either one.
"""

from __future__ import annotations

import builtins
import math
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from buttress._validation import Problems
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import BulkheadFullError
from buttress.events import BulkheadRejected, LimitChanged
from buttress.resilience._policy import AsyncLink, Policy, SyncLink

__all__ = ["AIMDLimit", "ConcurrencyLimit", "GradientLimit", "LimitAlgorithm"]

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


@runtime_checkable
class LimitAlgorithm(Protocol):
    """What :class:`ConcurrencyLimit` needs from a limit algorithm.

    ``update`` is called once per sampled call, serialised by the policy's lock; it must not
    block, sleep or read a clock.
    """

    @property
    def limit(self) -> int:
        """The current limit: calls allowed in flight at once (>= 1)."""
        ...

    def update(self, rtt: float, inflight: int, dropped: bool) -> int:
        """Feed one finished call: its latency in seconds, the calls in flight when it started
        (itself included) and whether it was dropped (timed out). Returns the new limit."""
        ...


def _check_bounds(p: Problems, initial_limit: object, min_limit: object, max_limit: object) -> None:
    p.int_at_least("initial_limit", initial_limit, 1)
    p.int_at_least("min_limit", min_limit, 1)
    p.int_at_least("max_limit", max_limit, 1)
    if p.items:
        return
    assert isinstance(initial_limit, int) and isinstance(min_limit, int) and isinstance(max_limit, int)
    if not min_limit <= initial_limit <= max_limit:
        p.add(
            "limits must satisfy min_limit <= initial_limit <= max_limit "
            f"(got {min_limit}, {initial_limit}, {max_limit})"
        )


class AIMDLimit:
    """Additive increase, multiplicative decrease (Netflix ``AIMDLimit``).

    Per sample: if the call was dropped or took longer than ``timeout``, the limit becomes
    ``max(min_limit, min(limit - 1, floor(limit * backoff_ratio)))``; otherwise, if at least half
    the limit was in use (``inflight * 2 >= limit``), it grows by one up to ``max_limit``; an
    under-used limit does not grow (the caller is "app-limited" and the sample says nothing).

    Args:
        initial_limit: the limit before any sample (Netflix's default, 20).
        min_limit: the floor (>= 1).
        max_limit: the ceiling.
        backoff_ratio: the factor applied on a drop, in [0.5, 1).
        timeout: a call slower than this many seconds counts as dropped.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> aimd = AIMDLimit(initial_limit=10, min_limit=1, max_limit=20)
        >>> aimd.update(0.01, inflight=10, dropped=False)
        11
        >>> aimd.update(0.01, inflight=11, dropped=True)
        9
    """

    __slots__ = ("_limit", "backoff_ratio", "max_limit", "min_limit", "timeout")

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 20,
        max_limit: int = 200,
        backoff_ratio: float = 0.9,
        timeout: float = 5.0,
    ) -> None:
        p = Problems("AIMDLimit")
        _check_bounds(p, initial_limit, min_limit, max_limit)
        if p._is_number("backoff_ratio", backoff_ratio) and not 0.5 <= backoff_ratio < 1:
            p.add(f"backoff_ratio must be in [0.5, 1) (got {backoff_ratio!r})")
        p.positive("timeout", timeout)
        p.raise_if_any()
        self._limit = initial_limit
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.backoff_ratio = float(backoff_ratio)
        self.timeout = float(timeout)

    @property
    def limit(self) -> int:
        """The current limit."""
        return self._limit

    def update(self, rtt: float, inflight: int, dropped: bool) -> int:
        """Feed one sample (see the class docs); returns the new limit."""
        limit = self._limit
        if dropped or rtt > self.timeout:
            limit = max(self.min_limit, min(limit - 1, math.floor(limit * self.backoff_ratio)))
        elif inflight * 2 >= limit:
            limit = min(self.max_limit, limit + 1)
        self._limit = limit
        return limit

    def __repr__(self) -> str:
        return f"AIMDLimit(limit={self._limit}, min_limit={self.min_limit}, max_limit={self.max_limit})"


class GradientLimit:
    """Latency-gradient limit (Netflix ``Gradient2Limit``).

    Keeps the latest latency (``short``) and an exponential moving average of latency over about
    ``long_window`` samples (``long``, the plain mean of the first ``warmup`` samples). Per
    sample, unless fewer than half the limit are in use (app-limited: no change):

    - ``gradient = clamp(long / short, 0.5, 1.0)``: 1 while latency is at its baseline, lower as
      latency rises (at most halving the limit per step, so one outlier cannot empty it);
    - ``target = limit * gradient + queue_size``, and the limit moves ``smoothing`` of the way
      there, within ``[min_limit, max_limit]``.

    When ``long`` exceeds twice ``short`` (latency has recovered after a long overload) ``long``
    is decayed by 10 % per sample so the baseline catches up. A dropped call counts with its
    latency, which a timeout makes long, as in Gradient2.

    Args:
        initial_limit: the limit before any sample.
        min_limit: the floor (>= 1).
        max_limit: the ceiling.
        smoothing: the fraction of each step taken, in (0, 1].
        queue_size: the head-room added per step while latency is flat (>= 0).
        long_window: the number of samples the long-term average spans (>= 1).
        warmup: samples averaged plainly before the moving average starts (>= 1).

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> gradient = GradientLimit(initial_limit=20, min_limit=1, max_limit=100, warmup=1)
        >>> gradient.update(0.010, inflight=20, dropped=False)  # flat latency: grows
        20
        >>> for _ in range(20):
        ...     _ = gradient.update(0.010, inflight=20, dropped=False)
        >>> gradient.limit > 20
        True
        >>> for _ in range(30):  # latency triples: the limit falls
        ...     _ = gradient.update(0.030, inflight=40, dropped=False)
        >>> gradient.limit < 20
        True
    """

    __slots__ = (
        "_count",
        "_estimate",
        "_factor",
        "_long",
        "long_window",
        "max_limit",
        "min_limit",
        "queue_size",
        "smoothing",
        "warmup",
    )

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 20,
        max_limit: int = 200,
        smoothing: float = 0.2,
        queue_size: int = 4,
        long_window: int = 600,
        warmup: int = 10,
    ) -> None:
        p = Problems("GradientLimit")
        _check_bounds(p, initial_limit, min_limit, max_limit)
        p.ratio("smoothing", smoothing, open_low=True)
        p.int_at_least("queue_size", queue_size, 0)
        p.int_at_least("long_window", long_window, 1)
        p.int_at_least("warmup", warmup, 1)
        p.raise_if_any()
        self._estimate = float(initial_limit)
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.smoothing = float(smoothing)
        self.queue_size = queue_size
        self.long_window = long_window
        self.warmup = warmup
        self._factor = 2.0 / (long_window + 1)
        self._long = 0.0
        self._count = 0

    @property
    def limit(self) -> int:
        """The current limit."""
        return int(self._estimate)

    @property
    def long_rtt(self) -> float:
        """The long-term latency baseline in seconds (0.0 before the first sample)."""
        return self._long

    def update(self, rtt: float, inflight: int, dropped: bool) -> int:
        """Feed one sample (see the class docs); returns the new limit."""
        short = rtt if rtt > 1e-9 else 1e-9
        if self._count < self.warmup:
            self._count += 1
            self._long += (short - self._long) / self._count
        else:
            self._long += (short - self._long) * self._factor
        long = self._long
        if long / short > 2.0:
            self._long = long = long * 0.9
        estimate = self._estimate
        if inflight < estimate / 2:
            return int(estimate)
        gradient = max(0.5, min(1.0, long / short))
        target = estimate * gradient + self.queue_size
        estimate = estimate * (1.0 - self.smoothing) + target * self.smoothing
        self._estimate = max(float(self.min_limit), min(float(self.max_limit), estimate))
        return int(self._estimate)

    def __repr__(self) -> str:
        return f"GradientLimit(limit={self.limit}, min_limit={self.min_limit}, max_limit={self.max_limit})"


class ConcurrencyLimit(Policy):
    """Refuse calls beyond a concurrency limit that an algorithm learns from latency.

    Each call takes a place if fewer than ``algorithm.limit`` calls are in flight, and is
    refused at once with :class:`~buttress.errors.BulkheadFullError` otherwise (there is no
    queue: waiting is what the limit exists to prevent). When the call ends, its latency feeds
    the algorithm: a success is a sample; an error in ``drop_on`` (by default timeouts) is a
    *dropped* sample; any other error is ignored (it says nothing about load). A change of
    the limit emits :class:`~buttress.events.LimitChanged`, a refusal
    :class:`~buttress.events.BulkheadRejected` (reason ``"limit"``).

    Args:
        algorithm: a :class:`LimitAlgorithm` (default :class:`GradientLimit` with its defaults).
            Give each policy its own.
        name: identifies the policy in errors and events.
        drop_on: exception types counted as dropped calls.
        clock: measures each call's latency.

    Raises:
        ConfigurationError: when ``algorithm`` or ``drop_on`` is not usable.

    Example:
        >>> from buttress.testing import FakeClock
        >>> aimd = AIMDLimit(initial_limit=1, min_limit=1, max_limit=5)
        >>> limiter = ConcurrencyLimit(aimd, clock=FakeClock())
        >>> limiter.call(lambda: "ok"), limiter.limit
        ('ok', 2)
    """

    __slots__ = ("_inflight", "_lock", "_now", "algorithm", "drop_on")

    def __init__(
        self,
        algorithm: LimitAlgorithm | None = None,
        /,
        *,
        name: str | None = None,
        drop_on: ExceptionTypes = builtins.TimeoutError,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        p = Problems(f"ConcurrencyLimit {name!r}" if name else "ConcurrencyLimit")
        given: object = algorithm
        if given is not None and not isinstance(given, LimitAlgorithm):
            p.add(f"algorithm must have a limit and update(rtt, inflight, dropped) (got {algorithm!r})")
        candidate: object = drop_on
        if not (
            (isinstance(candidate, type) and issubclass(candidate, BaseException))
            or (isinstance(candidate, tuple) and all(isinstance(t, type) for t in candidate))
        ):
            p.add(f"drop_on must be an exception type or a tuple of them (got {drop_on!r})")
        p.raise_if_any()
        self.algorithm: LimitAlgorithm = algorithm if algorithm is not None else GradientLimit()
        self.drop_on = drop_on
        self._inflight = 0
        self._lock = threading.Lock()
        self._now = clock.monotonic
        self._compose()

    @property
    def limit(self) -> int:
        """The current limit."""
        return self.algorithm.limit

    @property
    def inflight(self) -> int:
        """Calls in flight right now."""
        return self._inflight

    def acquire(self) -> tuple[float, int]:
        """Take a place; returns the permit ``(started, inflight)`` to give to :meth:`release`.

        Raises:
            BulkheadFullError: when the limit is reached.
        """
        with self._lock:
            inflight = self._inflight
            limit = self.algorithm.limit
            if inflight < limit:
                self._inflight = inflight = inflight + 1
                return self._now(), inflight
        if self.events.listeners:
            self.events.emit(BulkheadRejected(self.name, "limit", None, limit, 0))
        label = f"concurrency limit {self.name!r}" if self.name else "concurrency limit"
        raise BulkheadFullError(f"{label} reached: {limit} calls in flight", policy=self.name)

    def release(self, permit: tuple[float, int], error: BaseException | None = None) -> None:
        """Give the place back and feed the call's outcome to the algorithm."""
        started, inflight = permit
        rtt = self._now() - started
        dropped = error is not None and isinstance(error, self.drop_on)
        with self._lock:
            self._inflight -= 1
            if error is not None and not dropped:
                return
            old = self.algorithm.limit
            new = self.algorithm.update(rtt, inflight, dropped)
        if new != old and self.events.listeners:
            self.events.emit(LimitChanged(self.name, old, new, rtt, dropped))

    def guard(self) -> _Guard:
        """A context manager (``with`` or ``async with``) that runs its block as one call.

        Raises:
            BulkheadFullError: on entry, when the limit is reached.
        """
        return _Guard(self)

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        acquire, release = self.acquire, self.release

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            permit = acquire()
            try:
                result = nxt(fn, args, kwargs)
            except BaseException as error:
                release(permit, error)
                raise
            release(permit)
            return result

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        acquire, release = self.acquire, self.release

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            permit = acquire()
            try:
                result = await nxt(fn, args, kwargs)
            except BaseException as error:
                release(permit, error)
                raise
            release(permit)
            return result

        return link

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.algorithm!r}, name={self.name!r})"


class _Guard:
    """One guarded block; made by :meth:`ConcurrencyLimit.guard`."""

    __slots__ = ("_limiter", "_permit")

    def __init__(self, limiter: ConcurrencyLimit) -> None:
        self._limiter = limiter

    def __enter__(self) -> _Guard:
        self._permit = self._limiter.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._limiter.release(self._permit, exc)

    async def __aenter__(self) -> _Guard:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

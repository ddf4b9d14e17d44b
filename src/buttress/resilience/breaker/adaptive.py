"""Client-side adaptive throttling, as described in Google's SRE book ("Handling Overload").

Instead of the classic breaker's all-or-nothing open state, the throttle rejects a growing
*fraction* of calls as the backend's acceptance rate falls. Over a rolling window it counts

- ``requests``: calls the application attempted (including those rejected locally), and
- ``accepts``: calls the backend answered,

and rejects a new call locally with probability::

    p = max(0, (requests - K * accepts) / (requests + 1))

Rejections count as requests without an accept, so while the backend keeps failing the drop
rate rises towards 1; as failures age out of the window and successes come in, it falls back
to 0 on its own. The structure follows go-kratos/aegis's ``circuitbreaker/sre``.
"""

from __future__ import annotations

import math
import random as _random
import threading
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import OpenCircuitError
from buttress.events import CallRejected
from buttress.resilience._policy import AsyncLink, Policy, SyncLink
from buttress.resilience.window import TimeOutcomeWindow

__all__ = ["AdaptiveThrottle"]


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


class AdaptiveThrottle(Policy):
    """A probabilistic circuit breaker: Google SRE client-side adaptive throttling.

    Each call first asks :meth:`allow`. While fewer than ``min_requests`` calls were seen in
    the last ``window`` seconds every call goes; after that a call is rejected locally with
    probability ``max(0, (requests - k * accepts) / (requests + 1))``. A call that ran is
    recorded as a success (an accept) or a failure; a local rejection is recorded as a request
    without an accept. Nothing needs to be reset: the window slides and the drop probability
    follows the backend's recent acceptance rate.

    ``k`` is the multiplier of accepts the client tolerates: **K = 2 means accept up to 2x as
    many requests as the backend is currently accepting** before throttling starts (so at
    least half of the calls must succeed for nothing to be dropped). Smaller K throttles more
    aggressively, larger K lets more doomed calls through; K must be >= 1. The default,
    ``1 / 0.6`` (about 1.67), is go-kratos's: throttling starts when fewer than 60 % of the
    calls succeed.

    Used as a policy (``@throttle``, ``call``, ``acall``, ``guard()``) the outcome is recorded
    for you: a normal return is a success; an exception for which ``is_failure(exc)`` is true
    (by default any :class:`Exception`) is a failure; any other :class:`Exception` is a
    success, because the backend did answer (think of a 404 you exclude). A
    :class:`BaseException` that ``is_failure`` does not claim (cancellation,
    :class:`KeyboardInterrupt`) is not recorded at all: it says nothing about the backend.
    Exceptions always propagate unchanged. A rejected call raises
    :class:`~buttress.errors.OpenCircuitError` with ``state="throttled"`` and
    ``retry_after=None`` and emits :class:`~buttress.events.CallRejected` (``reason="throttled"``)
    when somebody listens.

    Thread-safety: the window is updated under one :class:`threading.Lock`, so the cost is
    one lock per call: recording the outcome takes it, while :meth:`allow` reads the running
    totals without it except when a bucket has just expired (or a call is rejected). The
    random draw, the user's predicate and event listeners run outside the lock.

    Args:
        name: the policy name used in errors, events and the registry.
        k: the accepts multiplier K described above (>= 1, finite).
        min_requests: below this many requests in the window every call is allowed (>= 0).
        window: the length of the rolling window in seconds (> 0, finite; a timedelta works).
        buckets: how many buckets the window is divided into (>= 1).
        is_failure: decides which exceptions count against the backend; default: every
            :class:`Exception`.
        clock: the time source.
        random: a source of floats in [0, 1) used for the drop decision.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> from buttress.testing import FakeClock
        >>> throttle = AdaptiveThrottle("search", k=2.0, min_requests=10, clock=FakeClock())
        >>> for _ in range(30):
        ...     throttle.mark_failed()
        >>> round(throttle.drop_probability, 3)  # 30 requests, 0 accepts: 30 / 31
        0.968
    """

    __slots__ = (
        "_clock",
        "_guard",
        "_is_failure",
        "_lock",
        "_random",
        "_record",
        "_window",
        "buckets",
        "k",
        "min_requests",
        "window",
    )

    k: float
    """The accepts multiplier K."""
    min_requests: int
    """Requests in the window below which nothing is throttled."""
    window: float
    """The length of the rolling window in seconds."""
    buckets: int
    """How many buckets the window is divided into."""

    def __init__(
        self,
        name: str | None = None,
        *,
        k: float = 1 / 0.6,
        min_requests: int = 100,
        window: float | timedelta = 3.0,
        buckets: int = 10,
        is_failure: Callable[[BaseException], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        random: Callable[[], float] = _random.random,
    ) -> None:
        window = seconds(window)
        problems = Problems("AdaptiveThrottle")
        problems.at_least("k", k, 1.0)
        if isinstance(k, float) and math.isinf(k):
            problems.add(f"k must be finite (got {k!r})")
        problems.int_at_least("min_requests", min_requests, 0)
        problems.positive("window", window, allow_inf=False)
        problems.int_at_least("buckets", buckets, 1)
        # Checked at run time too: a misplaced positional or a typo must fail here, not per call.
        predicate: object = is_failure
        if predicate is not None and not callable(predicate):
            problems.add(f"is_failure must be a callable or None (got {predicate!r})")
        source: object = random
        if not callable(source):
            problems.add(f"random must be a callable returning floats in [0, 1) (got {source!r})")
        problems.raise_if_any()
        super().__init__(name)
        self.k = float(k)
        self.min_requests = min_requests
        self.window = float(window)
        self.buckets = buckets
        self._is_failure = is_failure or _any_exception
        self._clock = clock
        self._random = random
        self._window = TimeOutcomeWindow(self.window, buckets)
        self._record = self._window.record
        self._lock = threading.Lock()
        self._guard = _ThrottleGuard(self)
        self._compose()

    # -- the throttle ---------------------------------------------------------------------
    def _probability(self, requests: int, failed: int) -> float:
        if requests < self.min_requests:
            return 0.0
        return max(0.0, (requests - self.k * (requests - failed)) / (requests + 1))

    def allow(self) -> bool:
        """Decide whether the next call may go, and record it when it may not.

        Returns ``True`` for a call that should run (then report its outcome with
        :meth:`mark_success` or :meth:`mark_failed`) and ``False`` for one rejected locally.
        A rejection is already recorded as a request without an accept: do not mark it.
        """
        now = self._clock.monotonic()
        window = self._window
        if math.floor(now / window.bucket_duration) > window._head:
            with self._lock:
                requests, failed, _ = window.totals(now)
        else:
            # No bucket expired since the last update, so the running totals are current and
            # reading them needs no lock: each read is atomic, and a record racing with the two
            # reads skews the probability by one call, which a random drop cannot notice.
            requests = window._calls
            failed = window._failures
        if requests < self.min_requests:
            return True
        excess = requests - self.k * (requests - failed)
        if excess <= 0.0 or self._random() >= excess / (requests + 1):
            return True
        with self._lock:
            self._window.record(True, False, now)
        if self.events.listeners:
            self.events.emit(CallRejected(policy=self.name, reason="throttled", retry_after=None))
        return False

    def mark_success(self) -> None:
        """Record a call the backend accepted (answered)."""
        now = self._clock.monotonic()
        with self._lock:
            self._record(False, False, now)

    def mark_failed(self) -> None:
        """Record a call the backend failed or did not answer."""
        now = self._clock.monotonic()
        with self._lock:
            self._record(True, False, now)

    def _totals(self) -> tuple[int, int]:
        now = self._clock.monotonic()
        with self._lock:
            requests, failed, _ = self._window.totals(now)
        return requests, failed

    @property
    def drop_probability(self) -> float:
        """The probability with which :meth:`allow` would reject a call now."""
        return self._probability(*self._totals())

    @property
    def requests(self) -> int:
        """Calls attempted within the window, including local rejections."""
        return self._totals()[0]

    @property
    def accepts(self) -> int:
        """Calls the backend accepted within the window."""
        requests, failed = self._totals()
        return requests - failed

    def reset(self) -> None:
        """Forget the window, so that nothing is throttled until new calls are seen."""
        with self._lock:
            self._window.reset()

    # -- as a policy ----------------------------------------------------------------------
    def _rejection(self) -> OpenCircuitError:
        return OpenCircuitError(
            f"adaptive throttle {self.name!r} rejected the call locally",
            policy=self.name or None,
            retry_after=None,
            state="throttled",
        )

    def _record_error(self, exc: BaseException) -> None:
        if self._is_failure(exc):
            self.mark_failed()
        elif isinstance(exc, Exception):
            self.mark_success()

    def guard(self) -> _ThrottleGuard:
        """A context manager (``with`` and ``async with``) that runs its block under the throttle.

        Entering raises :class:`~buttress.errors.OpenCircuitError` when the call is throttled;
        leaving records the outcome as described in the class docstring. The guard keeps no
        per-use state, so the same object is returned every time and may be entered by many
        threads and tasks at once.

        Example:
            >>> throttle = AdaptiveThrottle(min_requests=0)
            >>> with throttle.guard():
            ...     pass
            >>> throttle.accepts
            1
        """
        return self._guard

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        allow, record_error = self.allow, self._record_error
        monotonic, lock, record = self._clock.monotonic, self._lock, self._record

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if not allow():
                raise self._rejection()
            try:
                result = nxt(fn, args, kwargs)
            except BaseException as exc:
                record_error(exc)
                raise
            now = monotonic()  # mark_success(), inlined on the hot path
            with lock:
                record(False, False, now)
            return result

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        allow, record_error = self.allow, self._record_error
        monotonic, lock, record = self._clock.monotonic, self._lock, self._record

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if not allow():
                raise self._rejection()
            try:
                result = await nxt(fn, args, kwargs)
            except BaseException as exc:
                record_error(exc)
                raise
            now = monotonic()  # mark_success(), inlined on the hot path
            with lock:
                record(False, False, now)
            return result

        return link

    def __repr__(self) -> str:
        return (
            f"AdaptiveThrottle(name={self.name!r}, k={self.k!r}, min_requests={self.min_requests!r}, "
            f"window={self.window!r}, buckets={self.buckets!r})"
        )


class _ThrottleGuard:
    """The context manager returned by :meth:`AdaptiveThrottle.guard`."""

    __slots__ = ("_throttle",)

    def __init__(self, throttle: AdaptiveThrottle) -> None:
        self._throttle = throttle

    def __enter__(self) -> None:
        throttle = self._throttle
        if not throttle.allow():
            raise throttle._rejection()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self._throttle.mark_success()
        else:
            self._throttle._record_error(exc)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

"""The classic three-state circuit breaker: closed, open, half-open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import OpenCircuitError
from buttress.events import BreakerStateChanged, CallRejected, Event
from buttress.resilience._forwarding import awaiting, specialise
from buttress.resilience._policy import AsyncLink, Policy, SyncLink
from buttress.resilience.breaker._model import (
    BreakerConfig,
    BreakerState,
    Counts,
    ErrorPredicate,
    ExceptionTypes,
    Outcome,
    Totals,
    describe_rules,
    failure_predicate,
)
from buttress.resilience.breaker.store import (
    BreakerStore,
    MemoryBreakerStore,
    Permit,
    Rejection,
    Snapshot,
    Transition,
)

if TYPE_CHECKING:
    from buttress.resilience.backoff import Backoff

__all__ = ["CircuitBreaker"]

_log = logging.getLogger("buttress.breaker")


# The decorator's hot path compiled with the decorated function's own parameters (see
# buttress.resilience._forwarding); the generic wrappers in CircuitBreaker are the fallback.
_SYNC_BODY = """\
_bt_permit = _bt_store.fast
if _bt_permit is not None:
    try:
        _bt_result = _bt_fn({args})
    except BaseException as _bt_exc:
        _bt_fast_error(_bt_exc, _bt_permit.generation)
        raise
    if _bt_store.fast is _bt_permit:
        _bt_store.successes += 1
    else:
        _bt_stale_success(_bt_permit.generation)
    return _bt_result
return _bt_slow(_bt_fn, {pack_args}, {pack_kwargs})"""
_ASYNC_BODY = awaiting(_SYNC_BODY, "_bt_fn", "_bt_slow")


class CircuitBreaker(Policy):
    """Stop calling a dependency that keeps failing, and probe it before trusting it again.

    **Closed**: calls pass and outcomes are counted. The breaker *trips* (opens) when a rule
    is met: ``failure_threshold`` consecutive failures; or, over a window of the last
    ``window_size`` calls (``window_type="count"``) or seconds (``"time"``) holding at least
    ``minimum_calls`` calls, a failure rate >= ``failure_rate_threshold`` or a rate of calls
    slower than ``slow_call_duration`` >= ``slow_call_rate_threshold``; or when
    ``ready_to_trip(counts)`` returns true after a failure.

    **Open**: calls fail at once with :class:`~buttress.errors.OpenCircuitError` carrying
    ``retry_after``, for ``open_duration`` seconds — fixed, or a
    :class:`~buttress.resilience.backoff.Backoff` that grows on repeated trips and resets when
    the breaker closes.

    **Half-open**: exactly ``half_open_max_calls`` probe calls are admitted (concurrent callers
    included); ``half_open_success_threshold`` successes close the breaker, and as soon as that
    can no longer be reached it opens again. ``half_open_max_duration`` bounds how long probes
    may take.

    An exception is a failure when it is an instance of ``failure_on`` (or when
    ``is_failure(exc)`` is true), is ignored when it matches ``ignore_on`` or is not an
    :class:`Exception` at all (cancellation), and is otherwise a *success*: the dependency
    answered (a 404 should not trip a breaker). ``result_is_failure`` classifies return values.
    User exceptions always propagate unchanged.

    Args:
        name: identifies the breaker in errors, events and the registry.
        failure_threshold: consecutive failures that trip it; defaults to 5 when no other
            rule is set.
        failure_rate_threshold: failure ratio in (0, 1] over the window.
        slow_call_rate_threshold: slow-call ratio in (0, 1] over the window.
        slow_call_duration: seconds after which a call counts as slow.
        window_type: ``"count"`` (last N calls) or ``"time"`` (last N seconds, 10 buckets).
        window_size: calls or seconds in the window.
        minimum_calls: calls the window needs before a rate rule applies
            (default ``min(100, window_size)`` for count windows, 100 for time windows).
        ready_to_trip: gobreaker's ``ReadyToTrip``: called with :class:`Counts` after a
            failure (outside any lock); true trips the breaker.
        reset_interval: gobreaker's ``Interval``: clear the closed-state counts this often.
        open_duration: seconds (or timedelta, or a Backoff) to stay open.
        half_open_max_calls: probes admitted while half-open.
        half_open_success_threshold: successful probes needed to close (default: all).
        half_open_max_duration: reopen if probes have not decided within this many seconds.
        failure_on: exception types counted as failures.
        ignore_on: exception types counted neither way.
        is_failure: predicate over the exception, replacing ``failure_on``.
        result_is_failure: predicate over the return value.
        on_state_change: called with each :class:`~buttress.events.BreakerStateChanged`.
        store: where the state lives (default: in memory, this process).
        clock: the time source.

    Raises:
        ConfigurationError: (a ``ValueError``) listing every invalid argument.

    Example:
        >>> breaker = CircuitBreaker("payments", failure_threshold=3, open_duration=30)
        >>> @breaker
        ... def charge(amount: int) -> str:
        ...     return f"charged {amount}"
        >>> charge(5)
        'charged 5'
        >>> breaker.state
        <BreakerState.CLOSED: 'closed'>
    """

    __slots__ = (
        "_classify",
        "_clock",
        "_now",
        "_result_is_failure",
        "_store",
        "_timed",
        "config",
    )

    def __init__(
        self,
        name: str | None = None,
        *,
        failure_threshold: int | None = None,
        failure_rate_threshold: float | None = None,
        slow_call_rate_threshold: float | None = None,
        slow_call_duration: float | timedelta = 60.0,
        window_type: str = "count",
        window_size: float | timedelta = 100,
        minimum_calls: int | None = None,
        ready_to_trip: Callable[[Counts], bool] | None = None,
        reset_interval: float | timedelta | None = None,
        open_duration: float | timedelta | Backoff = 30.0,
        half_open_max_calls: int = 1,
        half_open_success_threshold: int | None = None,
        half_open_max_duration: float | timedelta | None = None,
        failure_on: ExceptionTypes = Exception,
        ignore_on: ExceptionTypes = (),
        is_failure: ErrorPredicate | None = None,
        result_is_failure: Callable[[Any], bool] | None = None,
        on_state_change: Callable[[BreakerStateChanged], object] | None = None,
        store: BreakerStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        if failure_threshold is None and failure_rate_threshold is None and slow_call_rate_threshold is None:
            failure_threshold = None if ready_to_trip is not None else 5
        self.config = BreakerConfig.build(
            name=self.name,
            failure_threshold=failure_threshold,
            failure_rate_threshold=failure_rate_threshold,
            slow_call_rate_threshold=slow_call_rate_threshold,
            slow_call_duration=slow_call_duration,
            window_type=window_type,
            window_size=window_size,
            minimum_calls=minimum_calls,
            ready_to_trip=ready_to_trip,
            reset_interval=reset_interval,
            open_duration=open_duration,
            half_open_max_calls=half_open_max_calls,
            half_open_success_threshold=half_open_success_threshold,
            half_open_max_duration=half_open_max_duration,
        )
        self._classify = failure_predicate(failure_on, ignore_on, is_failure)
        self._result_is_failure = result_is_failure
        self._store: BreakerStore = store if store is not None else MemoryBreakerStore()
        self._store.bind(self.config)
        self._clock = clock
        self._now = clock.monotonic
        self._timed = self.config.slow_call_rate_threshold is not None
        if on_state_change is not None:
            callback = on_state_change

            def on_change(event: Event) -> None:
                if isinstance(event, BreakerStateChanged):
                    callback(event)

            self.events.subscribe(on_change)
        self._compose()

    # -- reading ------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """State, counts, totals and ``retry_after`` read together, consistently."""
        snapshot, transition = self._store.snapshot(self._now())
        if transition is not None:
            self._announce(transition)
        return snapshot

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose time is up reads as half-open)."""
        return self.snapshot().state

    @property
    def counts(self) -> Counts:
        """Outcomes counted since the last state change (gobreaker's ``Counts``)."""
        return self.snapshot().counts

    @property
    def totals(self) -> Totals:
        """Lifetime totals: successes, failures, ignored, rejected calls and trips."""
        return self.snapshot().totals

    @property
    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through; 0.0 in any other state."""
        return self.snapshot().retry_after

    # -- manual control -----------------------------------------------------------------
    def force_open(self) -> None:
        """Reject every call until :meth:`reset` or :meth:`force_closed`."""
        self._force(BreakerState.FORCED_OPEN, "forced open")

    def force_closed(self) -> None:
        """Admit every call and never trip until :meth:`reset` or :meth:`force_open`."""
        self._force(BreakerState.FORCED_CLOSED, "forced closed")

    def reset(self) -> None:
        """Close the breaker and clear its counts (lifetime totals are kept)."""
        self._force(BreakerState.CLOSED, "reset")

    def _force(self, state: BreakerState, reason: str) -> None:
        transition = self._store.force(state, self._now(), reason)
        if transition is not None:
            self._announce(transition)

    # -- two-step use -------------------------------------------------------------------
    def acquire(self) -> Permit:
        """Ask to make one call; record its outcome with :meth:`record` (gobreaker's TwoStep).

        Raises:
            OpenCircuitError: when the breaker rejects the call.
        """
        permit, transition = self._store.acquire(self._now())
        if transition is not None:
            self._announce(transition)
        if isinstance(permit, Rejection):
            raise self._rejected(permit)
        return permit

    def record(
        self, permit: Permit, error: BaseException | None = None, *, result: Any = None, duration: float = 0.0
    ) -> None:
        """Record the outcome of a call admitted by :meth:`acquire`.

        Args:
            permit: what :meth:`acquire` returned.
            error: the exception the call raised, or ``None`` if it returned.
            result: the return value, checked by ``result_is_failure``.
            duration: how long the call took, for the slow-call rule.
        """
        if error is not None:
            kind = self._classify(error)
            outcome = "ignored" if kind is None else ("failure" if kind else "success")
        elif self._result_is_failure is not None and self._result_is_failure(result):
            outcome = "failure"
        else:
            outcome = "success"
        slow = self._timed and duration >= self.config.slow_call_duration
        now = self._now()
        transition, counts = self._store.record(permit, outcome, slow, now)  # type: ignore[arg-type]
        self._after_record(transition, counts, permit.generation, now)

    def guard(self) -> _Guard:
        """A context manager (``with`` or ``async with``) that runs its block as one call.

        Raises:
            OpenCircuitError: on entry, when the breaker rejects the call.
        """
        return _Guard(self)

    # -- internals ----------------------------------------------------------------------
    def _after_record(
        self, transition: Transition | None, counts: Counts | None, generation: int, now: float
    ) -> None:
        if transition is not None:
            self._announce(transition)
        elif counts is not None and self.config.ready_to_trip is not None:
            try:
                trip = self.config.ready_to_trip(counts)
            except Exception:
                _log.exception("ready_to_trip of breaker %r raised; not tripping", self.name)
                trip = False
            if trip:
                transition = self._store.trip_if(generation, now, "ready_to_trip returned true")
                if transition is not None:
                    self._announce(transition)

    def _announce(self, transition: Transition) -> None:
        if self.events.listeners:
            self.events.emit(
                BreakerStateChanged(self.name, transition.old.value, transition.new.value, transition.reason)
            )

    def _rejected(self, rejection: Rejection) -> OpenCircuitError:
        label = f"circuit breaker {self.name!r}" if self.name else "circuit breaker"
        state = rejection.state
        if state is BreakerState.HALF_OPEN:
            message = f"{label} is half-open and all its probe calls are in flight"
        elif rejection.retry_after is not None:
            message = f"{label} is open; retry after {rejection.retry_after:.3g}s"
        else:
            message = f"{label} is {state.value.replace('_', ' ')}"
        if self.events.listeners:
            self.events.emit(CallRejected(self.name, f"breaker {state.value}", rejection.retry_after))
        return OpenCircuitError(
            message, policy=self.name, retry_after=rejection.retry_after, state=state.value
        )

    def _fast_error(self, exc: BaseException, generation: int) -> None:
        store = self._store
        assert isinstance(store, MemoryBreakerStore)
        now = self._now()
        kind = self._classify(exc)
        if kind:
            transition, counts = store.fast_failure(generation, now)
        else:
            outcome: Outcome = "ignored" if kind is None else "success"
            transition, counts = store.record(Permit(generation, False), outcome, False, now)
        self._after_record(transition, counts, generation, now)

    def _fast_stale_success(self, generation: int) -> None:
        # A fast-path call that began in an earlier generation (the breaker moved while it ran):
        # its success is only totalled, never counted towards the state it did not run in.
        self._store.record(Permit(generation, False), "success", False, self._now())

    def _fast_result_failure(self, generation: int) -> None:
        store = self._store
        assert isinstance(store, MemoryBreakerStore)
        now = self._now()
        transition, counts = store.fast_failure(generation, now)
        self._after_record(transition, counts, generation, now)

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        store = self._store
        fast_error = self._fast_error
        stale_success = self._fast_stale_success
        check = self._result_is_failure
        acquire = self.acquire
        record = self.record
        now = self._now
        timed = self._timed

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            permit = store.fast
            if permit is not None:
                try:
                    result = nxt(fn, args, kwargs)
                except BaseException as exc:
                    fast_error(exc, permit.generation)
                    raise
                if check is not None and check(result):
                    self._fast_result_failure(permit.generation)
                    return result
                if store.fast is permit:
                    store.successes += 1  # type: ignore[attr-defined]
                else:
                    stale_success(permit.generation)
                return result
            permit = acquire()
            started = now() if timed else 0.0
            try:
                result = nxt(fn, args, kwargs)
            except BaseException as exc:
                record(permit, exc, duration=now() - started if timed else 0.0)
                raise
            record(permit, result=result, duration=now() - started if timed else 0.0)
            return result

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        store = self._store
        fast_error = self._fast_error
        stale_success = self._fast_stale_success
        check = self._result_is_failure
        acquire = self.acquire
        record = self.record
        now = self._now
        timed = self._timed

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            permit = store.fast
            if permit is not None:
                try:
                    result = await nxt(fn, args, kwargs)
                except BaseException as exc:
                    fast_error(exc, permit.generation)
                    raise
                if check is not None and check(result):
                    self._fast_result_failure(permit.generation)
                    return result
                if store.fast is permit:
                    store.successes += 1  # type: ignore[attr-defined]
                else:
                    stale_success(permit.generation)
                return result
            permit = acquire()
            started = now() if timed else 0.0
            try:
                result = await nxt(fn, args, kwargs)
            except BaseException as exc:
                record(permit, exc, duration=now() - started if timed else 0.0)
                raise
            record(permit, result=result, duration=now() - started if timed else 0.0)
            return result

        return link

    def _decorate_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        store = self._store
        if not isinstance(store, MemoryBreakerStore) or self._result_is_failure is not None:
            return super()._decorate_sync(fn)
        # The designed hot path: one flag test, the call, a generation check, one integer update.
        env = {
            "_bt_fn": fn,
            "_bt_store": store,
            "_bt_slow": self._sync_chain,
            "_bt_fast_error": self._fast_error,
            "_bt_stale_success": self._fast_stale_success,
        }
        return specialise(fn, _SYNC_BODY, env, is_async=False)

    def _decorate_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        store = self._store
        if not isinstance(store, MemoryBreakerStore) or self._result_is_failure is not None:
            return super()._decorate_async(fn)
        # The designed hot path: one flag test, the call, a generation check, one integer update.
        env = {
            "_bt_fn": fn,
            "_bt_store": store,
            "_bt_slow": self._async_chain,
            "_bt_fast_error": self._fast_error,
            "_bt_stale_success": self._fast_stale_success,
        }
        return specialise(fn, _ASYNC_BODY, env, is_async=True)

    def __repr__(self) -> str:
        rules = " or ".join(describe_rules(self.config))
        backoff = self.config.open_backoff
        opened = f"open {self.config.open_duration:g}s" if backoff is None else f"open for {backoff!r}"
        return f"CircuitBreaker(name={self.name!r}, trips on {rules}, {opened})"


class _Guard:
    """One guarded block; made by :meth:`CircuitBreaker.guard`."""

    __slots__ = ("_breaker", "_permit", "_started")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def __enter__(self) -> _Guard:
        self._permit = self._breaker.acquire()
        self._started = self._breaker._now()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        breaker = self._breaker
        breaker.record(self._permit, exc, duration=breaker._now() - self._started)

    async def __aenter__(self) -> _Guard:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

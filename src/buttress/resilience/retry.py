"""Retry with backoff: the :class:`Retry` policy, the :func:`retry` decorator, and gaz-style
:func:`retry_call` / :func:`aretry_call`.

The decision "retry after *d* seconds, or stop because ..." is made once, in
:class:`_Attempts`, and the sync and async drivers only wait and call again.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar, final

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import RetryError
from buttress.events import RetryBudgetExhausted, RetryExhausted, RetryScheduled
from buttress.resilience import _testing_switch
from buttress.resilience._forwarding import awaiting, specialise
from buttress.resilience._policy import AsyncLink, Policy, SyncLink, invoke_async, invoke_sync
from buttress.resilience.backoff import STOP, Backoff, Exponential
from buttress.resilience.budget import RetryBudget
from buttress.resilience.deadline import current_get as _current_deadline

__all__ = ["Attempt", "Permanent", "Retry", "aretry_call", "attempts_of", "retry", "retry_call"]

T = TypeVar("T")
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]

_NO_RESULT: Final[Any] = object()
_HISTORY_ATTR = "__buttress_retry_history__"


@final  # the retry loop tests ``error.__class__ is Permanent``: subclasses would be retried
class Permanent(Exception):
    """Raise ``Permanent(error)`` inside a retried function to stop retrying at once.

    The retry policy then raises ``error`` itself (not the wrapper), whatever its type.

    Example:
        >>> r = Retry(attempts=5)
        >>> def lookup() -> None:
        ...     raise Permanent(KeyError("no such user"))
        >>> try:
        ...     r.call(lookup)
        ... except KeyError as e:
        ...     print(repr(e))
        KeyError('no such user')
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt of a retried call ended with.

    Attributes:
        number: 1 for the first attempt.
        error: the exception it raised, or ``None``.
        result: its return value when it returned (``None`` otherwise).
        delay: seconds waited after it (``None`` for the last attempt).
    """

    number: int
    error: BaseException | None
    result: Any
    delay: float | None


def attempts_of(error: BaseException) -> tuple[Attempt, ...]:
    """The attempt history of an exception re-raised by a retry policy (empty if none).

    Example:
        >>> from buttress.resilience.backoff import Zero
        >>> r = Retry(attempts=2, backoff=Zero())
        >>> def boom() -> None:
        ...     raise ValueError("down")
        >>> try:
        ...     r.call(boom)
        ... except ValueError as e:
        ...     [a.number for a in attempts_of(e)]
        [1, 2]
    """
    history = getattr(error, _HISTORY_ATTR, None)
    return history if isinstance(history, tuple) else ()


def _error_filter(
    on: ExceptionTypes | Callable[[BaseException], bool],
) -> tuple[ExceptionTypes | None, Callable[[BaseException], bool] | None]:
    """Split ``on`` into exception types (tested inline, fast) or a predicate."""
    if isinstance(on, type | tuple):
        return on, None
    return None, on


Outcomes = list[tuple[BaseException | None, Any, float | None]]
"""(error, result, delay) of each attempt of one call; delay is None for the last one."""


def _decide(
    policy: Retry,
    outcomes: Outcomes,
    backoff: Backoff,
    error: BaseException | None,
    result: Any,
    started: float,
) -> float:
    """The sans-IO retry decision for one failed attempt of one call.

    Returns:
        the seconds to wait before the next attempt (>= 0), or a negative stop code whose
        reason is ``_STOP_REASONS[code]`` (``"attempts"``, ``"backoff"``, ``"deadline"``,
        ``"elapsed"`` or ``"budget"``): a float either way, so the drivers test it with one
        comparison. The outcome is appended to ``outcomes`` either way. A wait that would end at or past the
        current :class:`~buttress.resilience.Deadline` is never scheduled: the retry stops
        instead, before it spends from the budget.
    """
    number = len(outcomes) + 1
    mode = _testing_switch.current
    attempts = policy.attempts if mode is None else mode.cap(policy.attempts)
    if attempts is not None and number >= attempts:
        return _stop(policy, outcomes, error, result, "attempts")
    hint = getattr(error, "retry_after", None)
    if hint is None or type(hint) not in (float, int) or not math.isfinite(hint):
        delay = backoff.next_backoff()
        if delay is STOP:
            return _stop(policy, outcomes, error, result, "backoff")
    else:
        low, high = policy.retry_after_bounds
        delay = min(max(float(hint), low), high)
    if mode is not None:
        delay = 0.0
    deadline = _current_deadline()
    if deadline is not None and deadline._now() + delay >= deadline.at:
        return _stop(policy, outcomes, error, result, "deadline")
    if policy._limited:
        if policy.timeout is not None and policy._now() + delay - started > policy.timeout:
            return _stop(policy, outcomes, error, result, "elapsed")
        if policy.budget is not None and not policy.budget.try_spend():
            if policy.events.listeners:
                policy.events.emit(RetryBudgetExhausted(policy.name, number))
            return _stop(policy, outcomes, error, result, "budget")
    outcomes.append((error, result, delay))
    if policy.events.listeners:
        policy.events.emit(RetryScheduled(policy.name, number, delay, error, result))
    return delay


_STOP_REASONS: Final = {-1.0: "attempts", -2.0: "backoff", -3.0: "deadline", -4.0: "elapsed", -5.0: "budget"}
_STOP_CODES: Final = {reason: code for code, reason in _STOP_REASONS.items()}


def _stop(policy: Retry, outcomes: Outcomes, error: BaseException | None, result: Any, reason: str) -> float:
    outcomes.append((error, result, None))
    if policy.events.listeners:
        policy.events.emit(RetryExhausted(policy.name, len(outcomes), reason, error, result))
    return _STOP_CODES[reason]


def _final_error(
    policy: Retry, outcomes: Outcomes, error: BaseException | None, result: Any, reason: str
) -> BaseException:
    """The exception to raise when stopping: the last error itself, or a RetryError for a result."""
    history = tuple(
        Attempt(i, err, None if err is not None else res, delay)
        for i, (err, res, delay) in enumerate(outcomes, 1)
    )
    if error is not None:
        try:
            setattr(error, _HISTORY_ATTR, history)
        except AttributeError:  # pragma: no cover - exceptions with __slots__ and no __dict__
            pass
        return error
    label = f"retry policy {policy.name!r}" if policy.name else "retry policy"
    return RetryError(
        f"{label} gave up after {len(history)} attempts ({reason}): the result was still rejected",
        policy=policy.name,
        attempts=len(history),
        last_result=result,
        history=history,
    )


# The decorator's hot path compiled with the decorated function's own parameters (see
# buttress.resilience._forwarding); the generic wrappers in Retry are the fallback.
_SYNC_BODY = """\
try:
    return _bt_fn({args})
except BaseException as _bt_exc:
    _bt_error = _bt_exc
try:
    return _bt_again(_bt_fn, {pack_args}, {pack_kwargs}, _bt_error, _bt_none, 0.0)
finally:
    _bt_error = None  # see _sync_loop: no reference cycle through this frame"""
_ASYNC_BODY = awaiting(_SYNC_BODY, "_bt_fn", "_bt_again")


class Retry(Policy):
    """Call again, after a backoff delay, when a call fails.

    An attempt *fails* when it raises an exception selected by ``on`` (default: any
    :class:`Exception`) or returns a value for which ``retry_if_result`` is true. Retrying stops
    when ``attempts`` attempts were made, when the next wait would end more than ``timeout``
    seconds after the first attempt started, when the backoff returns ``STOP``, when the
    shared ``budget`` refuses, or at once when the function raises :class:`Permanent`.
    Exceptions not selected by ``on`` propagate at once; the final exception is the last one
    raised, unchanged (its history is in :func:`attempts_of`); a rejected final *result*
    becomes a :class:`~buttress.errors.RetryError`.

    An exception with a numeric ``retry_after`` attribute (an HTTP 429/503 translated to an
    error, :class:`~buttress.errors.OpenCircuitError`, :class:`~buttress.errors.RateLimitedError`)
    sets the next delay instead of the backoff, clamped to ``retry_after_bounds``. A zero delay
    never sleeps.

    Args:
        name: identifies the policy in errors and events.
        attempts: maximum attempts including the first (``None``: unlimited).
        timeout: maximum seconds from the first attempt's start to the start of the last.
        backoff: the delay schedule (default :class:`~buttress.resilience.backoff.Exponential`,
            1 s doubling to 5 min, +-50 % jitter). One configured object serves every call.
        on: exception types to retry, or a predicate over the exception.
        retry_if_result: predicate over the return value that asks for another attempt.
        retry_after_bounds: (min, max) seconds applied to ``retry_after`` hints.
        budget: a shared :class:`RetryBudget`; each call deposits one, each retry spends one.
        on_retry: called with each :class:`~buttress.events.RetryScheduled` event.
        clock: the time source (and sleeps).

    Example:
        >>> from buttress.resilience.backoff import Constant
        >>> calls = []
        >>> @Retry(attempts=3, backoff=Constant(0))
        ... def flaky() -> str:
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConnectionError("reset")
        ...     return "ok"
        >>> flaky(), len(calls)
        ('ok', 3)
    """

    __slots__ = (
        "_clock",
        "_limited",
        "_now",
        "_retry_predicate",
        "_retry_types",
        "attempts",
        "backoff",
        "budget",
        "retry_after_bounds",
        "retry_if_result",
        "timeout",
    )  # fmt: skip

    def __init__(
        self,
        name: str | None = None,
        *,
        attempts: int | None = 3,
        timeout: float | timedelta | None = None,
        backoff: Backoff | None = None,
        on: ExceptionTypes | Callable[[BaseException], bool] = Exception,
        retry_if_result: Callable[[Any], bool] | None = None,
        retry_after_bounds: tuple[float, float] = (0.0, 60.0),
        budget: RetryBudget | None = None,
        on_retry: Callable[[RetryScheduled], object] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name)
        p = Problems(f"Retry {name!r}" if name else "Retry")
        if attempts is not None:
            p.int_at_least("attempts", attempts, 1)
        total = None if timeout is None else seconds(timeout)
        if total is not None:
            p.non_negative("timeout", total)
        if backoff is not None and not callable(getattr(backoff, "clone", None)):
            p.add(f"backoff must be a Backoff with next_backoff(), reset() and clone() (got {backoff!r})")
        candidate: object = on  # checked at run time too: callers are not always type-checked
        if not (isinstance(candidate, type | tuple) or callable(candidate)):
            p.add(f"on must be an exception type, a tuple of them or a predicate (got {on!r})")
        bounds_ok = isinstance(retry_after_bounds, tuple) and len(retry_after_bounds) == 2
        if bounds_ok:
            p.non_negative("retry_after_bounds[0]", retry_after_bounds[0])
            p.non_negative("retry_after_bounds[1]", retry_after_bounds[1])
            if not p.items and retry_after_bounds[0] > retry_after_bounds[1]:
                p.add(f"retry_after_bounds must be (min, max) with min <= max (got {retry_after_bounds!r})")
        else:
            p.add(f"retry_after_bounds must be a (min, max) tuple of seconds (got {retry_after_bounds!r})")
        p.raise_if_any()
        self.attempts = attempts
        self.timeout = total
        self.backoff: Backoff = backoff if backoff is not None else Exponential(clock=clock)
        self._retry_types, self._retry_predicate = _error_filter(on)
        self.retry_if_result = retry_if_result
        self.retry_after_bounds = (float(retry_after_bounds[0]), float(retry_after_bounds[1]))
        self.budget = budget
        self._limited = total is not None or budget is not None  # one test on the failure path
        self._clock = clock
        self._now = clock.monotonic
        if on_retry is not None:
            callback = on_retry

            def on_event(event: object) -> None:
                if isinstance(event, RetryScheduled):
                    callback(event)

            self.events.subscribe(on_event)
        self._compose()

    # -- the drivers --------------------------------------------------------------------
    def _immediate(self, error: BaseException) -> BaseException | None:
        """The error to raise at once (permanent or not retryable), or None to consider a retry."""
        if isinstance(error, Permanent):
            return error.error
        types = self._retry_types
        if types is not None:
            return None if isinstance(error, types) else error
        assert self._retry_predicate is not None
        return None if self._retry_predicate(error) else error

    def _sync_loop(self, nxt: SyncLink) -> Callable[..., Any]:
        """The retry loop after a failed first attempt, with this policy's settings bound once."""
        template = self.backoff
        check = self.retry_if_result
        types = self._retry_types
        immediate_error = self._immediate
        sleep = self._clock.sleep
        direct = nxt is invoke_sync
        policy = self

        def again(
            fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            error: BaseException | None, result: Any, started: float,
        ) -> Any:  # fmt: skip
            outcomes: Outcomes = []
            backoff = template.clone()
            while True:
                if error is not None and (
                    types is None or error.__class__ is Permanent or not isinstance(error, types)
                ):
                    immediate = immediate_error(error)
                    if immediate is not None:
                        raise immediate
                delay = _decide(policy, outcomes, backoff, error, result, started)
                if delay < 0.0:  # a stop code: see _decide
                    raise _final_error(policy, outcomes, error, result, _STOP_REASONS[delay])
                # Hold no reference to a handled exception across the next attempt: its traceback
                # points at this frame, and the cycle would leave every retried call to the GC.
                error = None
                if delay:
                    sleep(delay)
                try:
                    result = fn(*args, **kwargs) if direct else nxt(fn, args, kwargs)
                except BaseException as exc:
                    error = exc
                    continue
                if check is None or not check(result):
                    outcomes.clear()
                    return result

        return again

    def _async_loop(self, nxt: AsyncLink) -> Callable[..., Any]:
        """The retry loop after a failed first attempt, with this policy's settings bound once."""
        template = self.backoff
        check = self.retry_if_result
        types = self._retry_types
        immediate_error = self._immediate
        asleep = self._clock.asleep
        direct = nxt is invoke_async
        policy = self

        async def again(
            fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            error: BaseException | None, result: Any, started: float,
        ) -> Any:  # fmt: skip
            outcomes: Outcomes = []
            backoff = template.clone()
            while True:
                if error is not None and (
                    types is None or error.__class__ is Permanent or not isinstance(error, types)
                ):
                    immediate = immediate_error(error)
                    if immediate is not None:
                        raise immediate
                delay = _decide(policy, outcomes, backoff, error, result, started)
                if delay < 0.0:  # a stop code: see _decide
                    raise _final_error(policy, outcomes, error, result, _STOP_REASONS[delay])
                # Hold no reference to a handled exception across the next attempt: its traceback
                # points at this frame, and the cycle would leave every retried call to the GC.
                error = None
                if delay:
                    await asleep(delay)
                try:
                    result = await (fn(*args, **kwargs) if direct else nxt(fn, args, kwargs))
                except BaseException as exc:
                    error = exc
                    continue
                if check is None or not check(result):
                    outcomes.clear()
                    return result

        return again

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        check = self.retry_if_result
        budget = self.budget
        now = self._now if self.timeout is not None else None
        again = self._sync_loop(nxt)

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            started = now() if now is not None else 0.0
            if budget is not None:
                budget.deposit()
            try:
                result = nxt(fn, args, kwargs)
            except BaseException as exc:
                error: BaseException | None = exc
            else:
                if check is None or not check(result):
                    return result
                return again(fn, args, kwargs, None, result, started)
            try:
                return again(fn, args, kwargs, error, _NO_RESULT, started)
            finally:
                error = None  # see _sync_loop: no reference cycle through this frame

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        check = self.retry_if_result
        budget = self.budget
        now = self._now if self.timeout is not None else None
        again = self._async_loop(nxt)

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            started = now() if now is not None else 0.0
            if budget is not None:
                budget.deposit()
            try:
                result = await nxt(fn, args, kwargs)
            except BaseException as exc:
                error: BaseException | None = exc
            else:
                if check is None or not check(result):
                    return result
                return await again(fn, args, kwargs, None, result, started)
            try:
                return await again(fn, args, kwargs, error, _NO_RESULT, started)
            finally:
                error = None  # see _sync_loop: no reference cycle through this frame

        return link

    def _decorate_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self.retry_if_result is not None or self.budget is not None or self.timeout is not None:
            return super()._decorate_sync(fn)
        # The designed hot path: a successful call costs one try block.
        env = {"_bt_fn": fn, "_bt_again": self._sync_loop(invoke_sync), "_bt_none": _NO_RESULT}
        return specialise(fn, _SYNC_BODY, env, is_async=False)

    def _decorate_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self.retry_if_result is not None or self.budget is not None or self.timeout is not None:
            return super()._decorate_async(fn)
        # The designed hot path: a successful call costs one try block.
        env = {"_bt_fn": fn, "_bt_again": self._async_loop(invoke_async), "_bt_none": _NO_RESULT}
        return specialise(fn, _ASYNC_BODY, env, is_async=True)

    def __repr__(self) -> str:
        return (
            f"Retry(name={self.name!r}, attempts={self.attempts}, timeout={self.timeout}, "
            f"backoff={self.backoff!r})"
        )


def retry(
    *,
    attempts: int | None = 3,
    timeout: float | timedelta | None = None,
    backoff: Backoff | None = None,
    on: ExceptionTypes | Callable[[BaseException], bool] = Exception,
    retry_if_result: Callable[[Any], bool] | None = None,
    budget: RetryBudget | None = None,
    on_retry: Callable[[RetryScheduled], object] | None = None,
    name: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Retry:
    """Build a :class:`Retry`; reads well as a decorator: ``@retry(attempts=5, on=OSError)``."""
    return Retry(
        name, attempts=attempts, timeout=timeout, backoff=backoff, on=on, retry_if_result=retry_if_result,
        budget=budget, on_retry=on_retry, clock=clock,
    )  # fmt: skip


def _notify_policy(
    backoff: Backoff, notify: Callable[[BaseException, float], object] | None, clock: Clock
) -> Retry:
    def on_retry(event: RetryScheduled) -> None:
        if notify is not None and event.error is not None:
            notify(event.error, event.delay)

    return Retry(attempts=None, backoff=backoff, on_retry=on_retry if notify else None, clock=clock)


def retry_call(
    operation: Callable[[], T],
    backoff: Backoff,
    *,
    notify: Callable[[BaseException, float], object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """gaz's ``Retry`` / ``RetryNotify``: call ``operation`` until it succeeds or ``backoff`` stops.

    Every :class:`Exception` is retried; raise :class:`Permanent` to stop at once.
    ``notify(error, delay)`` is called before each wait.

    Example:
        >>> from buttress.resilience.backoff import Constant, with_max_retries
        >>> seen = []
        >>> retry_call(lambda: 42, with_max_retries(Constant(0), 3), notify=lambda e, d: seen.append(d))
        42
    """
    return _notify_policy(backoff, notify, clock).call(operation)


async def aretry_call(
    operation: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    notify: Callable[[BaseException, float], object] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """The asyncio twin of :func:`retry_call`: awaits ``operation()`` until it succeeds."""
    return await _notify_policy(backoff, notify, clock).acall(operation)

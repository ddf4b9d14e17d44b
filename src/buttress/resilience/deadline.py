"""Deadlines carried in a context variable, so nested calls shrink their timeouts to what is left.

A :class:`Deadline` is a point in monotonic time. Entering one (``with Deadline(2.0):`` or
``async with``) makes it the *current* deadline of the running context: every
:class:`~buttress.resilience.Timeout` below it waits at most ``min(own timeout, time left)``, a
:class:`~buttress.resilience.Retry` never schedules a wait that would end past it, a
:class:`~buttress.resilience.Bulkhead` queues no longer than it, and your own code can ask
:func:`time_left` before it starts a Redis or HTTP call. Nested deadlines only ever tighten: a
deadline entered inside an earlier one leaves the earlier one in force.

The current deadline lives in a :class:`contextvars.ContextVar`, so it follows ``await`` and is
copied into the tasks a call creates (hedged attempts, ``asyncio.gather``), and a thread started
with :func:`contextvars.copy_context` sees it too. An ``async`` :class:`~buttress.resilience.Timeout`
enters its own deadline for the duration of the call, which is how a total timeout reaches the
per-attempt timeouts and retries inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import timedelta
from types import TracebackType
from typing import Final

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.errors import TimeoutError

__all__ = ["Deadline", "check_deadline", "current_deadline", "shrink", "time_left"]

_current: Final[ContextVar[Deadline | None]] = ContextVar("buttress_deadline", default=None)
current_get = _current.get
"""The context variable's ``get``, bound once: the policies read it on their hot paths."""
# The tokens of the ``with`` blocks open in this context, innermost last. They live in a context
# variable, not on the Deadline, so that one Deadline may be entered by many tasks at once.
_entered: Final[ContextVar[tuple[Token[Deadline | None], ...]]] = ContextVar(
    "buttress_deadline_entered", default=()
)


class Deadline:
    """A point in time after which work started on behalf of a call is no longer wanted.

    ``Deadline(seconds)`` ends ``seconds`` from now on ``clock``. Used as a context manager it
    becomes the current deadline (see the module docs) until the block ends; if a deadline that
    ends earlier is already in force, that one stays current. A deadline is immutable and may be
    shared between threads and tasks; entering it is per context.

    Args:
        seconds_: the time from now to the deadline (float seconds or a timedelta, >= 0; ``inf``
            is allowed and means "no deadline").
        clock: the monotonic time source the deadline is measured on.

    Raises:
        ConfigurationError: when ``seconds_`` is negative, NaN or not a number.

    Example:
        >>> from buttress.testing import FakeClock
        >>> clock = FakeClock()
        >>> with Deadline(2.0, clock=clock):
        ...     clock.advance(0.5)
        ...     time_left()
        1.5
        >>> time_left() is None  # no deadline outside the block
        True
    """

    __slots__ = ("_now", "_policy", "_timeout", "at")

    at: float
    """The deadline, on the clock's monotonic scale."""

    def __init__(self, seconds_: float | timedelta, /, *, clock: Clock = SYSTEM_CLOCK) -> None:
        limit = seconds(seconds_)
        p = Problems("Deadline")
        p.non_negative("seconds", limit)
        p.raise_if_any()
        self._now = clock.monotonic
        self.at = self._now() + float(limit)
        self._policy: str | None = None
        self._timeout = float(limit)

    @classmethod
    def _at(cls, at: float, now: Callable[[], float], policy: str, timeout: float) -> Deadline:
        """The deadline a timeout policy enters for one call, built without validation."""
        deadline = cls.__new__(cls)
        deadline.at = at
        deadline._now = now
        deadline._policy = policy
        deadline._timeout = timeout
        return deadline

    def remaining(self) -> float:
        """Seconds left before the deadline, never below ``0.0``."""
        left = self.at - self._now()
        return left if left > 0.0 else 0.0

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._now() >= self.at

    def check(self) -> None:
        """Raise :class:`~buttress.errors.TimeoutError` if the deadline has passed.

        This is the *cooperative* way for sync code to honour a deadline: call it between steps
        (each row of a batch, each page of a scan) where stopping is safe.

        Raises:
            TimeoutError: when the deadline has passed; its ``timeout`` is the deadline's length
                and its ``policy`` the timeout policy that set it, if any.
        """
        if self._now() >= self.at:
            raise self._error()

    def _error(self) -> TimeoutError:
        name = self._policy
        label = f"call {name!r} " if name else "call "
        return TimeoutError(
            f"{label}passed its deadline of {self._timeout:g}s", policy=name, timeout=self._timeout
        )

    def __enter__(self) -> Deadline:
        outer = current_get()
        # An earlier deadline stays in force: nested deadlines only tighten. Comparing what is
        # left (not ``at``) stays right when the two deadlines are on different clocks.
        keep = outer is not None and outer.remaining() <= self.remaining()
        token = _current.set(outer if keep else self)
        _entered.set((*_entered.get(), token))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        entered = _entered.get()
        _entered.set(entered[:-1])
        _current.reset(entered[-1])

    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.6g})"


def current_deadline() -> Deadline | None:
    """The deadline in force in this context, or ``None``."""
    return current_get()


def time_left() -> float | None:
    """Seconds left before the current deadline (``0.0`` once passed), or ``None`` without one.

    Example:
        >>> time_left() is None
        True
    """
    deadline = current_get()
    return None if deadline is None else deadline.remaining()


def shrink(timeout: float | None) -> float | None:
    """``timeout`` shrunk to the time left before the current deadline.

    This is the one-liner for passing a deadline on to a client that takes a timeout: use
    ``socket_timeout=shrink(2.0)`` and a call made with 300 ms left waits 300 ms, not 2 s.

    Args:
        timeout: your own timeout in seconds, or ``None`` for "no timeout of my own".

    Returns:
        ``min(timeout, time left)``; ``timeout`` unchanged without a current deadline; the time
        left when ``timeout`` is ``None``.

    Example:
        >>> from buttress.testing import FakeClock
        >>> with Deadline(0.3, clock=FakeClock()):
        ...     shrink(2.0), shrink(0.1), shrink(None)
        (0.3, 0.1, 0.3)
        >>> shrink(2.0)
        2.0
    """
    deadline = current_get()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    return left if timeout is None or left < timeout else timeout


def check_deadline() -> None:
    """Raise :class:`~buttress.errors.TimeoutError` if the current deadline has passed.

    Without a current deadline this does nothing. Sync code that runs under a cooperative
    :class:`~buttress.resilience.Timeout` (``sync="cooperative"``) calls it at safe points.

    Raises:
        TimeoutError: when the current deadline has passed.
    """
    deadline = current_get()
    if deadline is not None:
        deadline.check()

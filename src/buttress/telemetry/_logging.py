"""A listener that writes buttress events to the standard library's :mod:`logging`."""

from __future__ import annotations

import logging

from buttress.events import (
    BreakerStateChanged,
    CallRejected,
    Event,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
    TimeoutExpired,
)

__all__ = ["LoggingListener"]


class LoggingListener:
    """Log each event at a level that fits it; attach with ``subscribe(LoggingListener())``.

    Retries scheduled and rejections are ``INFO`` (they are the policy working as designed),
    a breaker opening, a retry budget running dry and a timeout are ``WARNING``, and giving
    up is ``ERROR``. The event object travels in ``extra={"buttress_event": event}`` for
    structured handlers.

    Args:
        logger: where to log (default: the ``buttress`` logger).

    Example:
        >>> import logging
        >>> from buttress.events import subscribe
        >>> with subscribe(LoggingListener(logging.getLogger("myservice.resilience"))):
        ...     pass
    """

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("buttress")

    def __call__(self, event: Event) -> None:
        level, message = self._render(event)
        if self.logger.isEnabledFor(level):
            self.logger.log(level, message, extra={"buttress_event": event})

    @staticmethod
    def _render(event: Event) -> tuple[int, str]:
        who = event.policy or type(event).__name__
        if isinstance(event, RetryScheduled):
            what = (
                f"{type(event.error).__name__}: {event.error}"
                if event.error is not None
                else "result rejected"
            )
            return (
                logging.INFO,
                f"{who}: attempt {event.attempt} failed ({what}); retrying in {event.delay:.3g}s",
            )
        if isinstance(event, RetryExhausted):
            return logging.ERROR, f"{who}: giving up after {event.attempts} attempts ({event.reason})"
        if isinstance(event, BreakerStateChanged):
            level = logging.WARNING if event.new in ("open", "forced_open") else logging.INFO
            return level, f"{who}: circuit breaker {event.old} -> {event.new} ({event.reason})"
        if isinstance(event, CallRejected):
            after = f"; retry after {event.retry_after:.3g}s" if event.retry_after is not None else ""
            return logging.INFO, f"{who}: call rejected ({event.reason}{after})"
        if isinstance(event, RetryBudgetExhausted):
            return logging.WARNING, f"{who}: retry budget exhausted at attempt {event.attempt}"
        if isinstance(event, TimeoutExpired):
            return logging.WARNING, f"{who}: call timed out after {event.timeout:g}s"
        return logging.INFO, f"{who}: {event!r}"

"""When to restart a worker: the options object and the sans-IO decision it drives.

:class:`RestartTracker` never sleeps and never spawns. The supervisor tells it that a run
started and how it ended (at which clock reading, with which error); it answers *restart after
d seconds*, *give up* (and why) or *the worker is complete*. The waiting lives in the
supervisor, so the schedule is tested deterministically with a fake clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, Literal, cast

from buttress._validation import Problems
from buttress.resilience.backoff import STOP, Backoff

__all__ = ["Decision", "RestartPolicy", "RestartTracker"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a supervisor restarts a worker that crashed (or, optionally, returned).

    A crashed worker is restarted after the next delay of ``backoff`` (by default
    ``Exponential()``: 1 s doubling to 5 min, +-50 % jitter, as gaz does). When a run lasts at
    least ``stable_after`` seconds before it ends, the backoff starts again from its first
    delay. The crash-loop breaker gives up on a worker when ``max_failures`` crashes fall
    within ``failure_window`` seconds (a sliding window, so crashes far apart never add up): the
    worker is marked failed, the dead-letter hook is called and, for a critical worker, the
    application is told to stop.

    Args:
        backoff: the delay schedule, used as a template (cloned per worker); ``None`` builds
            ``Exponential(clock=..., random=...)`` from the supervisor's clock and random.
        max_failures: crashes within the window that make the supervisor give up; ``None``
            never gives up.
        failure_window: the length of the crash-loop window, in seconds (> 0).
        stable_after: a run at least this long resets the backoff, in seconds (>= 0).
        restart_on_exit: restart a worker that *returned* without being asked to stop (after
            the backoff delay, without counting it as a crash); by default it is complete.

    Raises:
        ConfigurationError: listing every invalid field.

    Example:
        >>> RestartPolicy(max_failures=3, failure_window=60.0).max_failures
        3
    """

    backoff: Backoff | None = None
    max_failures: int | None = 5
    failure_window: float = 600.0
    stable_after: float = 60.0
    restart_on_exit: bool = False

    def __post_init__(self) -> None:
        p = Problems("RestartPolicy")
        if self.backoff is not None and not isinstance(cast(object, self.backoff), Backoff):
            p.add(f"backoff must implement next_backoff(), reset() and clone() (got {self.backoff!r})")
        if self.max_failures is not None:
            p.int_at_least("max_failures", self.max_failures, 1)
        p.positive("failure_window", self.failure_window)
        p.non_negative("stable_after", self.stable_after)
        if not isinstance(cast(object, self.restart_on_exit), bool):
            p.add(f"restart_on_exit must be a bool (got {self.restart_on_exit!r})")
        p.raise_if_any()


Action = Literal["restart", "give_up", "complete"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a run ended.

    Attributes:
        action: ``"restart"``, ``"give_up"`` or ``"complete"``.
        delay: seconds to wait before the restart (``"restart"`` only).
        reason: why the tracker gave up: ``"crash_loop"`` or ``"backoff"`` (the schedule
            returned ``STOP``).
    """

    action: Action
    delay: float = 0.0
    reason: str = ""


_COMPLETE: Final = Decision("complete")
_CRASH_LOOP: Final = Decision("give_up", reason="crash_loop")
_BACKOFF_STOPPED: Final = Decision("give_up", reason="backoff")


class RestartTracker:
    """The restart state of one worker: its backoff, its recent crashes and its crash count.

    Args:
        policy: the restart options.
        backoff: this worker's own schedule (a clone of the template).

    Example:
        >>> from buttress.resilience.backoff import Constant
        >>> t = RestartTracker(RestartPolicy(max_failures=2), Constant(1.0))
        >>> t.started(0.0)
        >>> t.ended(0.5, RuntimeError("boom"))
        Decision(action='restart', delay=1.0, reason='')
        >>> t.started(1.5)
        >>> t.ended(1.6, RuntimeError("boom")).action
        'give_up'
    """

    __slots__ = ("_backoff", "_policy", "_recent", "_started", "failures")

    def __init__(self, policy: RestartPolicy, backoff: Backoff) -> None:
        self._policy = policy
        self._backoff = backoff
        self._recent: deque[float] = deque()
        self._started = 0.0
        self.failures = 0

    def started(self, now: float) -> None:
        """A run began at clock reading ``now``."""
        self._started = now

    def ended(self, now: float, error: BaseException | None) -> Decision:
        """A run ended at ``now``, raising ``error`` (``None``: it returned); decide what next."""
        policy = self._policy
        if now - self._started >= policy.stable_after:
            self._backoff.reset()
        if error is not None:
            self.failures += 1
            limit = policy.max_failures
            if limit is not None:
                recent = self._recent
                recent.append(now)
                horizon = now - policy.failure_window
                while recent and recent[0] < horizon:
                    recent.popleft()
                if len(recent) >= limit:
                    return _CRASH_LOOP
        elif not policy.restart_on_exit:
            return _COMPLETE
        delay = self._backoff.next_backoff()
        if delay is STOP:
            return _BACKOFF_STOPPED
        return Decision("restart", delay=delay)

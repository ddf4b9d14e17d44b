"""What a supervisor reports: worker states and statuses, stop reports, failures, events."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from buttress.events import Event

__all__ = [
    "StopReport",
    "WorkerCrashed",
    "WorkerFailed",
    "WorkerFailure",
    "WorkerKind",
    "WorkerRestartScheduled",
    "WorkerStarted",
    "WorkerState",
    "WorkerStatus",
    "WorkerStopped",
]

WorkerKind = Literal["async", "thread"]
"""How a worker runs: as an asyncio task, or a sync function in its own thread."""


class WorkerState(enum.StrEnum):
    """The life of one worker.

    ``pending`` (added, supervisor not started) -> ``running`` -> on a crash ``restarting``
    (waiting out the backoff) -> ``running`` ... and finally one of ``stopped`` (asked to stop),
    ``completed`` (returned on its own) or ``failed`` (the supervisor gave up on it). A thread
    that did not stop in time stays ``running`` until it really returns.
    """

    PENDING = "pending"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A snapshot of one worker, for health probes and operators.

    Attributes:
        name: the worker's name (``name-0`` ... for pool members).
        state: where it is in its life.
        kind: ``"async"`` or ``"thread"``.
        critical: whether its failure stops the application.
        restarts: how many times it was restarted.
        failures: how many times it crashed.
        last_error: the last exception it raised, or ``None``.
    """

    name: str
    state: WorkerState
    kind: WorkerKind
    critical: bool
    restarts: int
    failures: int
    last_error: BaseException | None

    @property
    def healthy(self) -> bool:
        """``False`` only when the supervisor gave up on the worker."""
        return self.state is not WorkerState.FAILED


@dataclass(frozen=True, slots=True)
class WorkerFailure:
    """A worker the supervisor gave up on.

    Attributes:
        name: the worker's name.
        error: its last error (``None`` if it gave up after a normal return).
        reason: ``"crash_loop"`` or ``"backoff"`` (the restart schedule stopped).
        failures: how many times it crashed in all.
    """

    name: str
    error: BaseException | None
    reason: str
    failures: int


@dataclass(frozen=True, slots=True)
class StopReport:
    """How :meth:`Supervisor.stop <buttress.worker.Supervisor.stop>` went.

    Attributes:
        stopped: workers that were finished (stopped, completed or failed) within the timeout.
        cancelled: async workers that overran the timeout and were cancelled.
        still_running: workers still running when ``stop`` returned: threads that ignored
            their stop signal (Python cannot kill a thread) and tasks that swallowed the
            cancellation.
    """

    stopped: tuple[str, ...]
    cancelled: tuple[str, ...]
    still_running: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Every worker stopped on request within the timeout."""
        return not self.cancelled and not self.still_running


@dataclass(frozen=True, slots=True)
class WorkerStarted(Event):
    """A worker run began; ``run`` counts from 1 (2 is the first restart)."""

    worker: str
    run: int


@dataclass(frozen=True, slots=True)
class WorkerCrashed(Event):
    """A worker raised after ``ran_for`` seconds."""

    worker: str
    error: BaseException
    ran_for: float


@dataclass(frozen=True, slots=True)
class WorkerRestartScheduled(Event):
    """A worker will start again after ``delay`` seconds (its ``restarts``-th restart)."""

    worker: str
    delay: float
    restarts: int


@dataclass(frozen=True, slots=True)
class WorkerFailed(Event):
    """The supervisor gave up on a worker (``reason``: ``"crash_loop"`` or ``"backoff"``)."""

    worker: str
    error: BaseException | None
    reason: str
    critical: bool


@dataclass(frozen=True, slots=True)
class WorkerStopped(Event):
    """A worker finished for good; ``state`` is ``"stopped"`` or ``"completed"``."""

    worker: str
    state: WorkerState

"""Supervised background workers: async tasks and threads, restarted with backoff.

- :class:`Supervisor`: runs workers, restarts crashes, breaks crash loops, stops gracefully.
- :class:`RestartPolicy`: backoff, crash-loop breaker, stable-run reset, restart on exit.
- :class:`StopSignal`: what a worker watches to know it should finish.

See ``docs/workers.md``.
"""

from buttress.worker._restart import Decision, RestartPolicy, RestartTracker
from buttress.worker._signal import StopSignal
from buttress.worker._status import (
    StopReport,
    WorkerCrashed,
    WorkerFailed,
    WorkerFailure,
    WorkerKind,
    WorkerRestartScheduled,
    WorkerStarted,
    WorkerState,
    WorkerStatus,
    WorkerStopped,
)
from buttress.worker._supervisor import FailureHook, Supervisor
from buttress.worker._worker import WorkerFunction

__all__ = [
    "Decision",
    "FailureHook",
    "RestartPolicy",
    "RestartTracker",
    "StopReport",
    "StopSignal",
    "Supervisor",
    "WorkerCrashed",
    "WorkerFailed",
    "WorkerFailure",
    "WorkerFunction",
    "WorkerKind",
    "WorkerRestartScheduled",
    "WorkerStarted",
    "WorkerState",
    "WorkerStatus",
    "WorkerStopped",
]

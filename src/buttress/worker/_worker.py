"""One supervised worker and the loop that runs it: run, decide, wait, run again.

The decision after each run is :class:`~buttress.worker.RestartTracker`'s (sans-IO); this
module only calls or awaits the worker, waits out the delay through the stop signal, and keeps
the worker's state for status reports. Async workers run inside the supervising task; a thread
worker runs in a fresh daemon thread per run, awaited through a future, so both share one loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from buttress.clock import Clock
from buttress.events import EventPublisher
from buttress.worker._restart import RestartTracker
from buttress.worker._signal import StopSignal
from buttress.worker._status import (
    WorkerCrashed,
    WorkerKind,
    WorkerRestartScheduled,
    WorkerStarted,
    WorkerState,
    WorkerStatus,
    WorkerStopped,
)

_log = logging.getLogger("buttress.worker")

WorkerFunction = Callable[[StopSignal], object] | Callable[[], object]
"""A worker: ``async def run(stop)`` or ``def run(stop)`` (a thread); the ``stop`` parameter is
optional for workers that simply loop until they are cancelled."""

_FINAL = (WorkerState.STOPPED, WorkerState.COMPLETED, WorkerState.FAILED)


def takes_stop(fn: Callable[..., object]) -> bool:
    """Whether ``fn`` accepts a positional argument (its stop signal)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)  # fmt: skip
    return any(p.kind in positional for p in parameters)


class Host(Protocol):
    """What a worker needs from its supervisor."""

    name: str
    events: EventPublisher

    @property
    def clock(self) -> Clock: ...

    def give_up(self, worker: Worker, error: BaseException | None, reason: str) -> Awaitable[None]: ...


class Worker:
    """One supervised worker (one pool member).

    Only its supervising task mutates it, except ``state``, ``thread_done`` and ``detached``,
    which a thread left running after a stop updates under ``lock`` when it finally returns.
    """

    __slots__ = ("critical", "detached", "fn", "kind", "last_error", "lock", "name", "restarts", "runs",
                 "state", "stop", "takes_stop", "task", "thread", "thread_done", "tracker")  # fmt: skip

    def __init__(self, name: str, fn: WorkerFunction, kind: WorkerKind, critical: bool,
                 tracker: RestartTracker, stop: StopSignal) -> None:  # fmt: skip
        self.name = name
        self.fn = fn
        self.kind: WorkerKind = kind
        self.critical = critical
        self.tracker = tracker
        self.stop = stop
        self.takes_stop = takes_stop(fn)
        self.state = WorkerState.PENDING
        self.restarts = 0
        self.runs = 0
        self.last_error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self.thread: threading.Thread | None = None
        self.thread_done = True
        self.detached = False
        self.lock = threading.Lock()

    def call(self) -> object:
        if self.takes_stop:
            return cast(Callable[[StopSignal], object], self.fn)(self.stop)
        return cast(Callable[[], object], self.fn)()

    def status(self) -> WorkerStatus:
        return WorkerStatus(self.name, self.state, self.kind, self.critical, self.restarts,
                            self.tracker.failures, self.last_error)  # fmt: skip

    def finish(self, host: Host, state: WorkerState) -> None:
        self.state = state
        if host.events.listeners:
            host.events.emit(WorkerStopped(host.name, self.name, state))

    async def supervise(self, host: Host) -> None:
        """Run the worker until it is stopped, completes or is given up on."""
        clock = host.clock
        events = host.events
        try:
            while True:
                self.state = WorkerState.RUNNING
                self.runs += 1
                started = clock.monotonic()
                self.tracker.started(started)
                if events.listeners:
                    events.emit(WorkerStarted(host.name, self.name, self.runs))
                error: BaseException | None = None
                try:
                    if self.kind == "thread":
                        await self._run_in_thread(host)
                    else:
                        result = self.call()
                        if inspect.isawaitable(result):
                            await result
                except asyncio.CancelledError as exc:
                    task = asyncio.current_task()
                    if task is None or task.cancelling():
                        raise
                    error = exc  # the worker's own CancelledError, not a cancellation of ours
                except Exception as exc:
                    error = exc
                ended = clock.monotonic()
                if error is not None:
                    self.last_error = error
                if self.stop.is_set():
                    self.finish(host, WorkerState.STOPPED)
                    return
                decision = self.tracker.ended(ended, error)
                if error is not None:
                    _log.warning("worker %r of %r crashed after %.3gs", self.name, host.name,
                                 ended - started, exc_info=error)  # fmt: skip
                    if events.listeners:
                        events.emit(WorkerCrashed(host.name, self.name, error, ended - started))
                if decision.action == "complete":
                    self.finish(host, WorkerState.COMPLETED)
                    return
                if decision.action == "give_up":
                    self.state = WorkerState.FAILED
                    await host.give_up(self, error, decision.reason)
                    return
                self.state = WorkerState.RESTARTING
                if events.listeners:
                    events.emit(WorkerRestartScheduled(host.name, self.name, decision.delay,
                                                       self.restarts + 1))  # fmt: skip
                if await self.stop.asleep(decision.delay):
                    self.finish(host, WorkerState.STOPPED)
                    return
                self.restarts += 1
        except asyncio.CancelledError:
            with self.lock:
                self.detached = True
                if self.thread_done and self.state not in _FINAL:
                    self.state = WorkerState.STOPPED
            raise
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit ... from the worker: record it and let it propagate.
            self.last_error = exc
            self.state = WorkerState.FAILED
            raise

    async def _run_in_thread(self, host: Host) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def target() -> None:
            error: BaseException | None = None
            try:
                self.call()
            except BaseException as exc:
                error = exc
            with self.lock:
                self.thread_done = True
                if self.detached and self.state is WorkerState.RUNNING:
                    self.state = WorkerState.STOPPED
            try:
                loop.call_soon_threadsafe(settle, error)
            except RuntimeError:
                pass  # the loop is closed: the supervisor stopped waiting for this thread

        self.thread_done = False
        self.thread = threading.Thread(target=target, name=f"{host.name}/{self.name}", daemon=True)
        self.thread.start()
        await done

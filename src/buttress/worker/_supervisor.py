"""The supervisor: runs workers, restarts crashed ones, gives up on crash loops, stops them all."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random as _random
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Literal, cast

from buttress._validation import Problems, seconds
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.events import EventPublisher
from buttress.resilience._policy import is_async_callable
from buttress.resilience.backoff import Exponential
from buttress.worker._restart import RestartPolicy, RestartTracker
from buttress.worker._signal import StopSignal
from buttress.worker._status import (
    StopReport,
    WorkerFailed,
    WorkerFailure,
    WorkerKind,
    WorkerState,
    WorkerStatus,
)
from buttress.worker._worker import Worker, WorkerFunction

__all__ = ["FailureHook", "Supervisor", "WorkerFunction"]

_log = logging.getLogger("buttress.worker")

FailureHook = Callable[[str, BaseException | None], object]
"""Called with a worker's name and its last error; may be sync or return an awaitable."""


class Supervisor:
    """Runs background workers, restarts them when they crash, and stops them on request.

    Workers are ``async def`` functions (run as asyncio tasks) or plain functions (each run in
    its own daemon thread), called with their :class:`StopSignal`. A crashed worker is
    restarted after a backoff delay; a run that lasted ``stable_after`` resets the backoff; a
    crash loop (``max_failures`` crashes within ``failure_window``) makes the supervisor give
    up: the worker is marked ``failed``, ``on_dead_letter(name, error)`` is called and, for a
    *critical* worker, ``on_critical_failure(name, error)`` too, and
    :meth:`wait_critical_failure` returns, which is how an App learns that it must shut down.
    A worker that returns without being asked to stop is ``completed`` (unless its policy says
    ``restart_on_exit``).

    All restart waiting goes through ``clock`` (``await stop.asleep(delay)``), so with a
    :class:`~buttress.testing.FakeClock` a schedule of minutes runs instantly. The ``stop``
    timeout is a real-time bound enforced by the event loop, like
    :class:`buttress.resilience.Timeout`. A supervisor belongs to the event loop that starts
    it; call :meth:`add` after :meth:`start` only from that loop's thread.

    Args:
        name: names the supervisor in logs, events (``policy``) and thread names.
        restart: the default :class:`RestartPolicy` of its workers.
        clock: the clock for restart delays and run durations.
        random: the jitter source of the default backoff.
        on_dead_letter: called once per worker the supervisor gives up on.
        on_critical_failure: called when a critical worker is given up on.
        stop_timeout: the default timeout of :meth:`stop`, in seconds.

    Raises:
        ConfigurationError: listing every invalid argument.

    Example:
        >>> import asyncio
        >>> async def main() -> list[str]:
        ...     seen: list[str] = []
        ...     supervisor = Supervisor()
        ...     async def tick(stop: StopSignal) -> None:
        ...         seen.append(stop.worker)
        ...         await stop.wait_async()
        ...     supervisor.add(tick, pool=2)
        ...     async with supervisor:
        ...         await asyncio.sleep(0)
        ...     return seen
        >>> asyncio.run(main())
        ['tick-0', 'tick-1']
    """

    __slots__ = ("_clock", "_critical", "_critical_event", "_default_backoff", "_loop", "_on_critical",
                 "_on_dead_letter", "_restart", "_started", "_stop_timeout", "_stopping", "_workers",
                 "events", "name")  # fmt: skip

    def __init__(
        self,
        name: str = "workers",
        *,
        restart: RestartPolicy | None = None,
        clock: Clock = SYSTEM_CLOCK,
        random: Callable[[], float] = _random.random,
        on_dead_letter: FailureHook | None = None,
        on_critical_failure: FailureHook | None = None,
        stop_timeout: float | timedelta = 10.0,
    ) -> None:
        p = Problems(f"Supervisor {name!r}")
        if restart is not None and not isinstance(cast(object, restart), RestartPolicy):
            p.add(f"restart must be a RestartPolicy (got {restart!r})")
        if not all(callable(getattr(clock, m, None)) for m in ("monotonic", "sleep", "asleep")):
            p.add(f"clock must provide monotonic(), sleep() and asleep() (got {clock!r})")
        for hook_name, hook in (
            ("on_dead_letter", on_dead_letter),
            ("on_critical_failure", on_critical_failure),
        ):
            if hook is not None and not callable(cast(object, hook)):
                p.add(f"{hook_name} must be a callable (got {hook!r})")
        if not callable(cast(object, random)):
            p.add(f"random must be a zero-argument callable returning a float in [0, 1) (got {random!r})")
        p.positive("stop_timeout", seconds(stop_timeout))
        p.raise_if_any()
        self.name = name
        self._restart = restart or RestartPolicy()
        self._clock = clock
        self._default_backoff = Exponential(clock=clock, random=random)
        self._on_dead_letter = on_dead_letter
        self._on_critical = on_critical_failure
        self._stop_timeout = float(seconds(stop_timeout))
        self._workers: dict[str, Worker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False
        self._critical: WorkerFailure | None = None
        self._critical_event = asyncio.Event()
        self.events = EventPublisher()

    def add(
        self,
        fn: WorkerFunction,
        *,
        name: str | None = None,
        pool: int = 1,
        critical: bool = False,
        restart: RestartPolicy | None = None,
        kind: Literal["auto", "async", "thread"] = "auto",
    ) -> tuple[str, ...]:
        """Register a worker (or a pool of ``pool`` identical ones); start it if running.

        Args:
            fn: ``async def run(stop)`` or ``def run(stop)``; ``stop`` may be left out.
            name: the worker's name (default: the function's ``__name__``); pool members are
                named ``name-0`` ... ``name-{pool-1}``.
            pool: how many identical workers to run (>= 1).
            critical: a final failure of this worker stops the application.
            restart: this worker's restart policy (default: the supervisor's).
            kind: ``"auto"`` runs coroutine functions as tasks and anything else in a thread.

        Returns:
            The names of the workers added.

        Raises:
            ConfigurationError: invalid arguments or a name already in use.
            RuntimeError: the supervisor is stopping.
        """
        p = Problems("Supervisor.add")
        if not callable(cast(object, fn)):
            p.add(f"fn must be a callable (got {fn!r})")
        base = name if name is not None else getattr(fn, "__name__", "worker")
        if not isinstance(base, str) or not base:
            p.add(f"name must be a non-empty string (got {name!r})")
        p.int_at_least("pool", pool, 1)
        if cast(object, kind) not in ("auto", "async", "thread"):
            p.add(f"kind must be 'auto', 'async' or 'thread' (got {kind!r})")
        if restart is not None and not isinstance(cast(object, restart), RestartPolicy):
            p.add(f"restart must be a RestartPolicy (got {restart!r})")
        names: tuple[str, ...] = ()
        if not p.items:
            names = (base,) if pool == 1 else tuple(f"{base}-{i}" for i in range(pool))
            for taken in (n for n in names if n in self._workers):
                p.add(f"name {taken!r} is already used by another worker")
        p.raise_if_any()
        if self._stopping:
            raise RuntimeError(f"supervisor {self.name!r} is stopping; it accepts no new workers")
        policy = restart or self._restart
        template = policy.backoff or self._default_backoff
        resolved: WorkerKind = ("async" if is_async_callable(fn) else "thread") if kind == "auto" else kind
        for worker_name in names:
            worker = Worker(worker_name, fn, resolved, critical, RestartTracker(policy, template.clone()),
                             StopSignal(worker_name, clock=self._clock))  # fmt: skip
            self._workers[worker_name] = worker
            if self._started:
                self._launch(worker)
        return names

    async def start(self) -> None:
        """Start every registered worker (workers added later start at once).

        Raises:
            RuntimeError: the supervisor was already started.
        """
        if self._started:
            raise RuntimeError(f"supervisor {self.name!r} was already started")
        self._loop = asyncio.get_running_loop()
        self._started = True
        for worker in self._workers.values():
            self._launch(worker)

    def _launch(self, worker: Worker) -> None:
        assert self._loop is not None
        worker.task = self._loop.create_task(worker.supervise(self), name=f"{self.name}/{worker.name}")

    async def stop(
        self,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - a shutdown hook's own budget
        *,
        cancel_grace: float = 1.0,
    ) -> StopReport:
        """Ask every worker to stop, wait up to ``timeout``, then cancel what overran.

        Every stop signal is set at once. Workers still running after ``timeout`` are cancelled
        (async) and given ``cancel_grace`` seconds to unwind; a *thread* cannot be cancelled or
        killed, so a thread that ignores its signal is reported in ``still_running`` and left
        to finish on its own (it is a daemon thread and does not keep the process alive). The
        call returns within ``timeout + cancel_grace`` seconds. Calling it again is harmless.

        Args:
            timeout: seconds to wait for a graceful stop (default: ``stop_timeout``).
            cancel_grace: seconds to wait for cancelled tasks to unwind.

        Returns:
            A :class:`StopReport` naming what stopped, what was cancelled, what still runs.

        Raises:
            ConfigurationError: a negative or invalid timeout.
        """
        limit = self._stop_timeout if timeout is None else seconds(timeout)
        p = Problems("Supervisor.stop")
        p.non_negative("timeout", limit)
        p.non_negative("cancel_grace", cancel_grace)
        p.raise_if_any()
        self._stopping = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.stop.set()
        running = [w.task for w in workers if w.task is not None and not w.task.done()]
        pending: set[asyncio.Task[None]] = set()
        if running:
            _, pending = await asyncio.wait(running, timeout=limit)
        if pending:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=cancel_grace)
        stopped: list[str] = []
        cancelled: list[str] = []
        still_running: list[str] = []
        for worker in workers:
            if worker.state is WorkerState.PENDING:
                worker.state = WorkerState.STOPPED
            if worker.task not in pending:
                stopped.append(worker.name)
            elif not worker.task.done() or not worker.thread_done:
                still_running.append(worker.name)
            else:
                cancelled.append(worker.name)
        if cancelled:
            _log.warning("supervisor %r cancelled workers that overran %.3gs: %s", self.name, limit,
                         ", ".join(cancelled))  # fmt: skip
        if still_running:
            names = ", ".join(still_running)
            _log.error("supervisor %r: workers still running after stop (threads cannot be killed, "
                       "tasks may swallow their cancellation): %s", self.name, names)  # fmt: skip
        return StopReport(tuple(stopped), tuple(cancelled), tuple(still_running))

    async def join(self) -> None:
        """Wait until every started worker has finished (completed, failed or stopped)."""
        while True:
            tasks = [w.task for w in self._workers.values() if w.task is not None and not w.task.done()]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def wait_critical_failure(self) -> WorkerFailure:
        """Return once a critical worker has been given up on: the first such failure."""
        await self._critical_event.wait()
        assert self._critical is not None
        return self._critical

    @property
    def critical_failure(self) -> WorkerFailure | None:
        """The first critical worker given up on, or ``None``."""
        return self._critical

    def status(self) -> dict[str, WorkerStatus]:
        """A snapshot of every worker, in the order they were added."""
        return {name: worker.status() for name, worker in self._workers.items()}

    @property
    def healthy(self) -> bool:
        """``True`` unless the supervisor gave up on some worker."""
        return all(w.state is not WorkerState.FAILED for w in self._workers.values())

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def clock(self) -> Clock:
        """The clock restart delays are measured on."""
        return self._clock

    async def give_up(self, worker: Worker, error: BaseException | None, reason: str) -> None:
        """Report a worker given up on: log, event, dead-letter and critical-failure hooks."""
        failure = WorkerFailure(worker.name, error, reason, worker.tracker.failures)
        _log.error("supervisor %r gave up on worker %r (%s, %d failures)%s", self.name, worker.name, reason,
                   failure.failures, " - critical" if worker.critical else "")  # fmt: skip
        if self.events.listeners:
            self.events.emit(WorkerFailed(self.name, worker.name, error, reason, worker.critical))
        if self._on_dead_letter is not None:
            await self._call_hook("on_dead_letter", self._on_dead_letter, worker.name, error)
        if worker.critical:
            if self._critical is None:
                self._critical = failure
                self._critical_event.set()
            if self._on_critical is not None:
                await self._call_hook("on_critical_failure", self._on_critical, worker.name, error)

    async def _call_hook(self, label: str, hook: FailureHook, name: str, error: BaseException | None) -> None:
        try:
            result = hook(name, error)
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.exception("%s hook of supervisor %r failed for worker %r", label, self.name, name)

    def __repr__(self) -> str:
        return f"Supervisor({self.name!r}, workers={len(self._workers)})"

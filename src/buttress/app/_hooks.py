"""Lifecycle hooks: the shutdown phases, running one hook within a timeout, and the report."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Literal

from buttress.resilience._policy import is_async_callable

__all__ = ["Hook", "HookOutcome", "HookStatus", "Phase", "ShutdownHook", "ShutdownReport", "run_hook"]

Hook = Callable[[], object]
"""A lifecycle hook: ``def hook()`` (run in a daemon thread) or ``async def hook()`` (awaited)."""


class Phase(enum.Enum):
    """The shutdown phases, in the order they run.

    1. ``STOP_ACCEPTING``: close listeners, stop consuming from brokers (readiness already fails).
    2. ``DRAIN``: let in-flight requests and jobs finish.
    3. ``STOP_WORKERS``: the App's supervisor stops its workers first, then this phase's hooks
       run (stop cron, close an event bus so it delivers what the workers published).
    4. ``FLUSH_TELEMETRY``: flush metrics, traces and log buffers.
    5. ``CLOSE_CLIENTS``: this phase's hooks, then the container's services are stopped in
       reverse dependency layers, then its finalizers run (clients, pools, connections).
    """

    STOP_ACCEPTING = "stop_accepting"
    DRAIN = "drain"
    STOP_WORKERS = "stop_workers"
    FLUSH_TELEMETRY = "flush_telemetry"
    CLOSE_CLIENTS = "close_clients"


HookStatus = Literal["ok", "failed", "timed_out", "skipped"]


@dataclass(frozen=True, slots=True)
class ShutdownHook:
    """A registered hook: its display name, function, phase, own timeout and owning module.

    ``budgeted`` hooks are the App's own (supervisor, container): they are called with the
    seconds they may take, and bound themselves.
    """

    name: str
    fn: Callable[..., object]
    phase: Phase | None
    timeout: float | None
    owner: str
    budgeted: bool = False


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """What one hook did: ``ok``, ``failed`` (``error`` says why), ``timed_out`` or ``skipped``.

    ``detail`` names what inside a built-in hook overran (``worker poller cancelled``).
    """

    name: str
    phase: Phase | None
    status: HookStatus
    seconds: float
    error: BaseException | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What the shutdown did, hook by hook, in the order they ran.

    Attributes:
        reason: why the App stopped (``"signal SIGTERM"``, ``"requested"``, ``"rollback"``...).
        outcomes: one :class:`HookOutcome` per hook.
        seconds: how long the whole shutdown took.
    """

    reason: str
    outcomes: tuple[HookOutcome, ...] = ()
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Every hook returned in time."""
        return all(o.status == "ok" for o in self.outcomes)

    @property
    def blamed(self) -> tuple[str, ...]:
        """The hooks that overran their timeout or were skipped for want of time."""
        return tuple(o.name for o in self.outcomes if o.status in ("timed_out", "skipped"))

    @property
    def failed(self) -> tuple[tuple[str, BaseException], ...]:
        """``(hook, error)`` for each hook that raised."""
        return tuple((o.name, o.error) for o in self.outcomes if o.status == "failed" and o.error)


def _daemon_call(name: str, fn: Callable[..., object], args: tuple[Any, ...]) -> Future[object]:
    # a daemon thread, not an executor: a hung sync hook must not hold up loop or interpreter exit
    future: Future[object] = Future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            with contextlib.suppress(InvalidStateError):  # the waiter gave up: nobody to tell
                future.set_exception(exc)
        else:
            with contextlib.suppress(InvalidStateError):
                future.set_result(result)

    threading.Thread(target=run, name=f"buttress-hook-{name}", daemon=True).start()
    return future


async def _call(name: str, fn: Callable[..., object], args: tuple[Any, ...]) -> object:
    if is_async_callable(fn):
        result = fn(*args)
    else:
        result = await asyncio.wrap_future(_daemon_call(name, fn, args))
    if inspect.isawaitable(result):
        # a sync callable that returned a coroutine (``lambda: bus.close()``): run it on the loop
        result = await result
    return result


async def run_hook(
    name: str,
    fn: Callable[..., object],
    timeout: float | None,  # noqa: ASYNC109 - the hook's own budget, reported, not raised
    *,
    args: tuple[Any, ...] = (),
) -> tuple[HookStatus, BaseException | None, object]:
    """Run ``fn(*args)`` within ``timeout`` seconds: sync in a daemon thread, async on the loop.

    An async hook that overruns is cancelled and not waited for; a sync one cannot be killed, so
    it is abandoned in its daemon thread.

    Returns:
        ``(status, error, result)``: ``("ok", None, result)``, ``("failed", error, None)`` or
        ``("timed_out", None, None)``.
    """
    task: asyncio.Future[object] = asyncio.ensure_future(_call(name, fn, args))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        # our caller gave up (start-up timeout or interruption): the hook must not outlive it
        task.cancel()
        task.add_done_callback(_swallow)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_swallow)
        return "timed_out", None, None
    error = task.exception()
    if error is not None:
        return "failed", error, None
    return "ok", None, task.result()


def _swallow(task: asyncio.Future[object]) -> None:
    # an abandoned hook's late outcome is of no interest, but must be retrieved to keep asyncio quiet
    if not task.cancelled():
        task.exception()

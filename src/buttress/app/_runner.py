"""Serving an App: the signal handlers, the wait for a stop, and a loop that always ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from buttress.app._errors import StartupError
from buttress.app._options import ExitCode

if TYPE_CHECKING:
    from buttress.app._app import App

__all__ = ["Signals", "force_exit", "run_loop", "serve"]

_log = logging.getLogger("buttress.app")
T = TypeVar("T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def force_exit(code: int) -> None:
    """Flush the logs and standard streams, then leave at once, abandoning every thread."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class Signals:
    """SIGINT/SIGTERM handlers: the first asks the App to stop, the second forces the exit."""

    __slots__ = ("_app", "_force", "_installed", "_loop", "_previous", "received")

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop,
                 force: Callable[[int], object] | None = None) -> None:  # fmt: skip
        self._app = app
        self._loop = loop
        self._force = force or force_exit
        self._installed: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}
        self.received = 0

    def install(self) -> None:
        """Install the handlers (only possible in the main thread; elsewhere, a debug log)."""
        if threading.current_thread() is not threading.main_thread():
            _log.debug("app %r: not in the main thread, signal handlers not installed", self._app.name)
            return
        for sig in _SIGNALS:
            try:
                self._loop.add_signal_handler(sig, self.handle, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows event loops
                self._previous[sig] = signal.signal(sig, self._from_signal_module)
            self._installed.append(sig)

    def _from_signal_module(self, signum: int, frame: FrameType | None) -> None:  # pragma: no cover
        self._loop.call_soon_threadsafe(self.handle, signal.Signals(signum))

    def uninstall(self) -> None:
        """Restore what was there before."""
        for sig in self._installed:
            if sig in self._previous:  # pragma: no cover - Windows event loops
                signal.signal(sig, self._previous.pop(sig))
            else:
                self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def handle(self, sig: signal.Signals) -> None:
        """React to ``sig``: stop gracefully the first time, force the exit the second."""
        self.received += 1
        name = signal.Signals(sig).name
        if self.received == 1:
            _log.warning("app %r received %s: stopping gracefully (send it again to force the exit)",
                         self._app.name, name)  # fmt: skip
            self._app.request_stop(f"signal {name}")
            return
        hook = self._app.current_hook
        _log.critical("app %r received %s again: forcing the exit%s", self._app.name, name,
                      f", abandoning shutdown hook {hook!r}" if hook else "")  # fmt: skip
        self._force(int(ExitCode.FORCED))


async def serve(app: App) -> ExitCode:
    """Start ``app``, wait for a stop request or a critical worker failure, stop it."""
    start = asyncio.create_task(app.start(), name=f"{app.name}/start")
    stop_requested = asyncio.create_task(app._stop_event.wait(), name=f"{app.name}/stop-request")
    if app._stop_reason is not None:
        app._stop_event.set()
    critical: asyncio.Task[Any] | None = None
    try:
        await asyncio.wait({start, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
        try:
            await start
        except asyncio.CancelledError:
            if not stop_requested.done():
                raise  # serve() itself was cancelled
            _log.error("app %r: start-up interrupted (%s)", app.name, app._stop_reason)
            return ExitCode.START_FAILED
        except StartupError as error:
            for line in error.problems:
                _log.error("  %s", line)
            return ExitCode.CONFIG_INVALID if error.stage in ("config", "validate") else ExitCode.START_FAILED
        critical = asyncio.create_task(app.supervisor.wait_critical_failure(), name=f"{app.name}/critical")
        await asyncio.wait({stop_requested, critical}, return_when=asyncio.FIRST_COMPLETED)
        code = ExitCode.OK
        reason = app._stop_reason or "requested"
        if critical.done() and not stop_requested.done():
            failure = critical.result()
            reason = f"critical worker {failure.name} failed ({failure.reason})"
            _log.error("app %r: %s; stopping", app.name, reason)
            code = ExitCode.CRITICAL_WORKER
        report = await app.stop(reason)
        if code is ExitCode.OK and not report.clean:
            code = ExitCode.UNCLEAN_SHUTDOWN
        return code
    finally:
        for task in (stop_requested, critical):
            if task is not None and not task.done():
                task.cancel()


def run_loop(main: Coroutine[Any, Any, T], grace: float) -> T:
    """Run ``main`` on a new event loop in this thread, then tear the loop down within ``grace`` s.

    Unlike ``asyncio.run``, a leftover task that swallows its cancellation, or a default
    executor thread that hangs, cannot keep the loop from closing.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                _, pending = loop.run_until_complete(asyncio.wait(leftovers, timeout=grace))
                if pending:
                    names = ", ".join(sorted(t.get_name() for t in pending))
                    _log.error("tasks still running after cancellation, abandoned: %s", names)
            with contextlib.suppress(TimeoutError):
                loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), grace))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

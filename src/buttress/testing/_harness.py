"""Running an App inside a test: its own event-loop thread, overrides, config, bounded start/stop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from buttress.app import App, ShutdownReport

__all__ = ["AppHarness"]

T = TypeVar("T")


class AppHarness:
    """Runs an :class:`~buttress.app.App` for a test, on an event loop in a background thread.

    Behaviour: the harness makes the App's configuration hermetic (``environ={}``, no ``.env``,
    whatever is given) and layers ``config`` over it as overrides; ``overrides`` replace container
    registrations (``{Db: FakeDb()}``). :meth:`start` and :meth:`stop` go through the App's own
    ``start``/``stop``, the path production takes, each bounded by a timeout. Sync tests talk to
    the running App with :meth:`resolve` and :meth:`call`. As a context manager it starts and
    always stops; :meth:`close` is idempotent. Async tests can use ``async with app:`` instead.

    Args:
        app: the App to run (not started yet).
        config: dotted settings keys -> values, the highest-precedence layer.
        overrides: registration key -> instance, applied after the modules' setup.
        environ: the environment the configuration sees (default: empty).
        start_timeout: seconds :meth:`start` may take.
        stop_timeout: seconds :meth:`stop` may take (beyond the App's own shutdown bound, the
            harness gives up and reports the App as stuck).

    Example:
        >>> from buttress.app import App, Module
        >>> class Greeter:
        ...     def hello(self) -> str:
        ...         return "hello"
        >>> app = App("demo", modules=[Module("greet", setup=lambda ctx: ctx.container.register(Greeter))])
        >>> with AppHarness(app) as harness:
        ...     harness.resolve(Greeter).hello()
        'hello'
        >>> harness.report.clean
        True
    """

    def __init__(
        self,
        app: App,
        *,
        config: Mapping[str, object] | None = None,
        overrides: Mapping[Any, object] | None = None,
        environ: Mapping[str, str] | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.app = app
        options = app.config_options
        app.config_options = dataclasses.replace(
            options,
            environ=dict(environ or {}),
            env_file=None,
            overrides={**options.overrides, **(config or {})},
        )
        for key, instance in (overrides or {}).items():
            app.override(key, instance=instance)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.report: ShutdownReport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The App's event loop (running in the harness's thread)."""
        if self._loop is None:
            raise RuntimeError("the harness is not started")
        return self._loop

    def start(self) -> App:
        """Start the App within ``start_timeout`` seconds; returns it.

        Raises:
            StartupError: the App failed to start (it rolled back; the loop is closed).
            TimeoutError: it did not start in time (it is stopped as far as possible).
        """
        if self._loop is not None:
            raise RuntimeError("the harness was already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"buttress-test-{self.app.name}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        try:
            self.call(self.app.start(), timeout=self.start_timeout)
        except BaseException:
            self._close_loop()
            raise
        return self.app

    def call(self, work: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run a coroutine on the App's loop and return its result (within ``timeout`` s).

        Raises:
            TimeoutError: it did not finish in time (it is cancelled).
        """
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        try:
            return future.result(self.stop_timeout if timeout is None else timeout)
        except TimeoutError:
            future.cancel()
            raise

    def resolve(self, tp: type[T], name: str | None = None) -> T:
        """Resolve ``tp`` from the App's container, on the App's loop (async providers too)."""
        return self.call(self.app.container.aresolve(tp, name))

    def stop(self, reason: str = "test finished") -> ShutdownReport:
        """Stop the App within ``stop_timeout`` seconds, close the loop; returns the report."""
        try:
            self.report = self.call(self.app.stop(reason), timeout=self.stop_timeout)
        finally:
            self._close_loop()
        return self.report

    def close(self) -> ShutdownReport | None:
        """Stop the App if it is running; harmless to call again."""
        if self._loop is not None and self.report is None and self.app.state.value == "running":
            return self.stop()
        self._close_loop()
        return self.report

    def _close_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self.stop_timeout)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> AppHarness:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AppHarness({self.app!r})"

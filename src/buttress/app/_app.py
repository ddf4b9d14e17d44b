"""The App: modules assembled into one service with one start-up path and a phased shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from buttress._validation import Problems
from buttress.app._errors import Stage, StartupError
from buttress.app._hooks import Hook, Phase, ShutdownHook, ShutdownReport, run_hook
from buttress.app._module import Flag, Module, Setup, module_name
from buttress.app._options import AppState, ConfigOptions, ExitCode, Timeouts, default_prefix
from buttress.app._shutdown import run_phases
from buttress.app._startup import load_config, prepare_errors
from buttress.clock import SYSTEM_CLOCK, Clock
from buttress.di import Container, StartError
from buttress.errors import ConfigurationError
from buttress.worker import Supervisor

if TYPE_CHECKING:
    from buttress.config import Loaded

__all__ = ["App"]

_log = logging.getLogger("buttress.app")
_MISSING: Any = object()


class App:
    """A service assembled from modules, with one start-up path and a phased, bounded shutdown.

    Every way of running goes through :meth:`start` and :meth:`stop`: :meth:`run` (the CLI's
    ``run``), ``await app.serve()``, ``async with app:`` and the test harness.

    Start-up, in order: load the configuration (every module's sections); run each module's
    ``setup``; apply test overrides; validate the dependency graph; start the container's
    services in dependency layers; run the start hooks; start the workers. The App is then
    *ready*. If a step fails, what started is stopped again in reverse (only that) and
    :class:`StartupError` names the stage, the component and why.

    Shutdown: readiness turns failing first, then the :class:`Phase` hooks run in order, each
    within its own timeout and all within ``Timeouts.shutdown``; a hook that overruns is named
    in the log ("blame") and the next one runs.

    Args:
        name: the service's name (logs, the environment prefix, the CLI's program name).
        modules: modules to :meth:`use` at once.
        config: where the configuration comes from (:class:`ConfigOptions`).
        timeouts: hook, shutdown, start-up and cancel-grace bounds (:class:`Timeouts`).
        container: the DI container (default: a new one).
        supervisor: the worker supervisor (default: a new one named after the App).
        clock: the clock the App measures with and hands to modules.

    Raises:
        ConfigurationError: an empty name or an invalid option.
    """

    def __init__(
        self,
        name: str,
        *,
        modules: Iterable[Module] = (),
        config: ConfigOptions | None = None,
        timeouts: Timeouts | None = None,
        container: Container | None = None,
        supervisor: Supervisor | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        p = Problems("App")
        if not isinstance(name, str) or not name.strip():
            p.add(f"name must be a non-empty string (got {name!r})")
        if config is not None and not isinstance(cast(object, config), ConfigOptions):
            p.add(f"config must be a ConfigOptions (got {config!r})")
        if timeouts is not None and not isinstance(cast(object, timeouts), Timeouts):
            p.add(f"timeouts must be a Timeouts (got {timeouts!r})")
        p.raise_if_any()
        self.name = name
        self.config_options = config or ConfigOptions()
        self.timeouts = timeouts or Timeouts()
        self.clock = clock
        self.container = container if container is not None else Container()
        self.supervisor = supervisor if supervisor is not None else Supervisor(name, clock=clock)
        self._modules: dict[str, Module] = {}
        self._flags: dict[str, tuple[Flag, str]] = {}
        self._hooks: list[ShutdownHook] = []
        self._overrides: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self._loaded: Loaded[Any] | None = None
        self._prepared = False
        self._state = AppState.CREATED
        self._ready = False
        self._started_owners: set[str] = set()
        self._workers_started = False
        self._progress: tuple[str, str] = ("config", "")
        self._stop_event = asyncio.Event()
        self._stop_reason: str | None = None
        self._stop_task: asyncio.Task[ShutdownReport] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.current_hook: str | None = None
        for module in modules:
            self.use(module)

    # -- assembling ----------------------------------------------------------------------

    def use(self, module: Module) -> App:
        """Add ``module``; returns the App, so calls chain.

        Raises:
            ConfigurationError: another module has the same name or one of the same flags, or
                the App is already set up.
        """
        p = Problems(f"App {self.name!r}")
        if not isinstance(module, Module):
            raise ConfigurationError(f"App {self.name!r}", [f"module must be a Module (got {module!r})"])
        name = module_name(module)
        if self._prepared or self._state is not AppState.CREATED:
            p.add(f"cannot add module {name!r}: the app is already set up")
        if name in self._modules:
            p.add(f"module name {name!r} is already used by {self._modules[name]!r}")
        for flag in module.flags:
            if flag.name in self._flags:
                p.add(f"flag {flag.name} of module {name!r} is already defined by module "
                      f"{self._flags[flag.name][1]!r}")  # fmt: skip
        p.raise_if_any()
        self._modules[name] = module
        for flag in module.flags:
            self._flags[flag.name] = (flag, name)
        return self

    @property
    def modules(self) -> tuple[Module, ...]:
        """The modules, in the order they were added."""
        return tuple(self._modules.values())

    def flags(self) -> tuple[Flag, ...]:
        """Every module's CLI flags, in module order."""
        return tuple(flag for flag, _ in self._flags.values())

    def on_start(self, hook: Hook, *, name: str | None = None) -> None:
        """An App-level start hook (after every module's); see :meth:`Setup.on_start`."""
        Setup(self, "app").on_start(hook, name=name)

    def on_shutdown(self, phase: Phase, hook: Hook, *, name: str | None = None,
                    timeout: float | None = None) -> None:  # fmt: skip
        """An App-level shutdown hook; see :meth:`Setup.on_shutdown`."""
        Setup(self, "app").on_shutdown(phase, hook, name=name, timeout=timeout)

    def override(self, key: Any, provider: Callable[..., Any] | None = None, /, *,
                 instance: Any = _MISSING, **options: Any) -> None:  # fmt: skip
        """Replace a registration for this App's life (tests), applied after the modules' setup.

        Takes the arguments of :meth:`buttress.di.Container.override`.
        """
        if self._prepared:
            raise RuntimeError(f"app {self.name!r} is already set up; override before start()")
        args: tuple[Any, ...] = (key,) if provider is None else (key, provider)
        if instance is not _MISSING:
            options["instance"] = instance
        self._overrides.append((args, options))

    def _add_hook(self, hook: ShutdownHook) -> None:
        self._hooks.append(hook)

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> AppState:
        """Where the App is in its life."""
        return self._state

    @property
    def ready(self) -> bool:
        """Readiness: true from the end of start-up until the shutdown begins."""
        return self._ready

    @property
    def config(self) -> Loaded[Any] | None:
        """The loaded configuration (after :meth:`prepare`), ``None`` if the App has no settings."""
        return self._loaded

    @property
    def prefix(self) -> str:
        """The environment prefix (``ConfigOptions.prefix`` or derived from the name)."""
        return self.config_options.prefix or default_prefix(self.name)

    # -- start-up ----------------------------------------------------------------------------

    def load_config(self) -> Loaded[Any] | None:
        """Load the configuration now, without setting anything up (``config show``).

        Raises:
            buttress.config.ConfigError: listing every problem.
        """
        return load_config(self.config_options, self.prefix, self._modules)

    def prepare(self) -> None:
        """Load the configuration, run every module's ``setup``, validate the graph (idempotent).

        :meth:`start` calls it; ``config check`` calls it alone. Nothing is started.

        Raises:
            StartupError: stage ``config``, ``setup`` or ``validate``, with every problem.
        """
        if self._prepared:
            return
        self._progress = ("config", "")
        with prepare_errors(self.name, lambda: self._progress):
            self._loaded = self.load_config()
            for name, module in self._modules.items():
                self._progress_to("setup", name)
                module.setup(Setup(self, name))
            self._progress_to("validate", "container")
            for args, options in self._overrides:
                self.container.override(*args, **options)
            self.container.validate()
        self._prepared = True

    def _progress_to(self, stage: str, component: str) -> None:
        self._progress = (stage, component)

    def check(self) -> tuple[str, ...]:
        """Every problem :meth:`prepare` finds, one line each; empty when all is well."""
        try:
            self.prepare()
        except StartupError as error:
            return error.problems
        return ()

    async def start(self) -> None:
        """Start the App (see the class docs); it is then :attr:`ready`.

        Raises:
            StartupError: after rolling back what had started.
            RuntimeError: the App was already started.
            asyncio.CancelledError: start-up was cancelled (after rolling back).
        """
        if self._state is not AppState.CREATED:
            raise RuntimeError(f"app {self.name!r} was already started (it is {self._state.value})")
        self._state = AppState.STARTING
        self._loop = asyncio.get_running_loop()
        began = self.clock.monotonic()
        _log.info("app %r starting", self.name)
        try:
            async with asyncio.timeout(self.timeouts.start) as deadline:
                await self._start_steps()
        except StartupError as error:
            await self._rollback(error)
            raise
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            timed_out = self._progress_error(
                "timeout", f"start-up did not finish within {self.timeouts.start:g}s"
            )
            await self._rollback(timed_out)
            raise timed_out from exc
        except asyncio.CancelledError:
            await self._rollback(self._progress_error("interrupted", "start-up interrupted"))
            raise
        self._state = AppState.RUNNING
        self._ready = True
        _log.info("app %r started in %.3fs; ready", self.name, self.clock.monotonic() - began)

    def _progress_error(self, stage: Stage, what: str) -> StartupError:
        at, component = self._progress
        where = f"{at} {component}".strip()
        return StartupError(self.name, stage, component, f"{what} (stuck in {where})")

    async def _start_steps(self) -> None:
        self.prepare()
        self._progress_to("services", "")
        try:
            await self.container.start()
        except StartError as exc:
            raise StartupError(self.name, "services", exc.service, str(exc)) from exc
        for owner in [*self._modules, "app"]:
            for hook in (h for h in self._hooks if h.phase is None and h.owner == owner):
                self._progress_to("hooks", hook.name)
                _, error, _ = await run_hook(hook.name, hook.fn, None)
                if error is not None:
                    raise StartupError(self.name, "hooks", hook.name,
                                       f"start hook {hook.name} failed: {type(error).__name__}: {error}",
                                       ) from error  # fmt: skip
            self._started_owners.add(owner)
        self._progress_to("workers", "")
        await self.supervisor.start()
        self._workers_started = True

    async def _rollback(self, error: StartupError) -> None:
        self._ready = False
        _log.error("%s; rolling back", error)
        error.rollback = await run_phases(self, self._plan(rollback=True), "rollback")
        self._state = AppState.FAILED

    # -- shutdown ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested") -> None:
        """Ask a serving App to stop gracefully; safe from any thread and from signal handlers."""
        if self._stop_reason is None:
            self._stop_reason = reason
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._stop_event.set()
        else:
            loop.call_soon_threadsafe(self._stop_event.set)

    async def stop(self, reason: str = "requested") -> ShutdownReport:
        """Stop the App: readiness fails, then the shutdown phases run (idempotent).

        Returns:
            The :class:`ShutdownReport`; a second call returns the same report.
        """
        if self._stop_task is None:
            if self._state is AppState.CREATED:
                self._state = AppState.STOPPED
                return ShutdownReport(reason)
            if self._state is not AppState.RUNNING:
                raise RuntimeError(f"app {self.name!r} is {self._state.value}; it cannot be stopped now")
            self._stop_task = asyncio.get_running_loop().create_task(self._stop(reason))
        return await asyncio.shield(self._stop_task)

    async def _stop(self, reason: str) -> ShutdownReport:
        self._state = AppState.STOPPING
        self._ready = False
        _log.warning("app %r stopping (%s): readiness is now failing", self.name, reason)
        report = await run_phases(self, self._plan(rollback=False), reason)
        self._state = AppState.STOPPED
        return report

    def _plan(self, *, rollback: bool) -> list[ShutdownHook]:
        plan: list[ShutdownHook] = []
        for phase in Phase:
            if phase is Phase.STOP_WORKERS and self._workers_started:
                plan.append(ShutdownHook("app.workers", self._stop_workers, phase, None, "app", True))
            plan += [
                h
                for h in self._hooks
                if h.phase is phase and (not rollback or h.owner in self._started_owners)
            ]
        plan.append(ShutdownHook("app.services", self._stop_services, Phase.CLOSE_CLIENTS, None, "app", True))
        plan.append(ShutdownHook("app.finalizers", self._finalize, Phase.CLOSE_CLIENTS, None, "app", True))
        return plan

    async def _stop_workers(self, budget: float) -> tuple[str, str]:
        grace = min(self.timeouts.cancel_grace, budget / 2)
        report = await self.supervisor.stop(timeout=budget - grace, cancel_grace=grace)
        if report.clean:
            return "ok", ""
        parts = [f"worker {n} cancelled" for n in report.cancelled]
        parts += [f"worker {n} still running" for n in report.still_running]
        return "timed_out", ", ".join(parts)

    async def _stop_services(self, budget: float) -> tuple[str, str]:
        result = await self.container.stop(hook_timeout=budget)
        parts = [f"service {n} timed out" for n in result.timed_out]
        parts += [f"service {n} failed: {type(e).__name__}: {e}" for n, e in result.failed]
        return ("ok" if result.ok else "failed" if not result.timed_out else "timed_out"), ", ".join(parts)

    async def _finalize(self, budget: float) -> tuple[str, str]:
        try:
            await self.container.aclose()
        except Exception as exc:  # a FinalizerError lists every finalizer that raised
            return "failed", str(exc)
        return "ok", ""

    # -- running -----------------------------------------------------------------------------

    async def serve(self, *, handle_signals: bool = False,
                    force_exit: Callable[[int], object] | None = None) -> ExitCode:  # fmt: skip
        """Start, wait for a stop request (or a critical worker failure), stop; the exit code.

        Args:
            handle_signals: install SIGINT/SIGTERM handlers on the running loop (main thread
                only): the first signal stops gracefully, a second one forces the exit.
            force_exit: what a second signal calls with :attr:`ExitCode.FORCED` (default: flush
                the logs and ``os._exit``); for tests.
        """
        from buttress.app._runner import Signals, serve

        signals = Signals(self, asyncio.get_running_loop(), force_exit) if handle_signals else None
        if signals is not None:
            signals.install()
        try:
            return await serve(self)
        finally:
            if signals is not None:
                signals.uninstall()

    def run(self, *, force_exit: Callable[[int], object] | None = None) -> int:
        """Run the App in the main thread until SIGINT/SIGTERM; returns the :class:`ExitCode`.

        The event loop runs in the calling thread; sync hooks run in daemon threads and thread
        workers in their own, so a sync (thread-based) App is run the same way. The loop is
        torn down within ``Timeouts.cancel_grace`` even if some task ignores its cancellation.
        """
        from buttress.app._runner import run_loop

        return int(
            run_loop(self.serve(handle_signals=True, force_exit=force_exit), self.timeouts.cancel_grace)
        )

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop("context exit" if exc is None else f"error {type(exc).__name__}")

    def __repr__(self) -> str:
        return f"App({self.name!r}, modules={list(self._modules)}, state={self._state.value})"

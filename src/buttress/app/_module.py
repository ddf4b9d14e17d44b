"""Modules: the unit an App is assembled from, and the context their ``setup`` receives."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from buttress._validation import Problems
from buttress.app._hooks import Hook, Phase, ShutdownHook

if TYPE_CHECKING:
    from buttress.app._app import App
    from buttress.clock import Clock
    from buttress.config import Loaded
    from buttress.di import Container
    from buttress.worker import RestartPolicy, Supervisor, WorkerFunction

__all__ = ["Flag", "Module", "Setup", "module_name"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Flag:
    """A command-line flag a module contributes, bound to one dotted config key.

    The CLI shows it in ``--help`` and passes what it parsed to the config's CLI layer, so a
    flag beats the environment and files, and ``config show`` names the flag as the source.

    Attributes:
        name: the flag as typed, ``"--http-port"``.
        key: the dotted settings key it sets, ``"http.port"``.
        help: the ``--help`` text.
        type: ``str``, ``int``, ``float`` or ``bool``; a ``bool`` flag is an on/off pair
            (``--debug/--no-debug``). The config layer coerces the value, as for the environment.
        metavar: the placeholder shown in ``--help``.

    Raises:
        ConfigurationError: a name that does not start with ``--``, an empty key, another type.
    """

    name: str
    key: str
    help: str = ""
    type: type[Any] = str
    metavar: str | None = None

    def __post_init__(self) -> None:
        p = Problems(f"Flag {self.name!r}")
        if not self.name.startswith("--") or len(self.name) < 3 or " " in self.name:
            p.add(f"name must look like '--some-flag' (got {self.name!r})")
        if not self.key or any(not part.isidentifier() for part in self.key.split(".")):
            p.add(f"key must be a dotted settings key like 'http.port' (got {self.key!r})")
        if self.type not in (str, int, float, bool):
            p.add(f"type must be str, int, float or bool (got {self.type!r})")
        p.raise_if_any()


class Module:
    """A piece of an App: DI registrations, config sections, workers, CLI flags and hooks.

    Subclass it and override :meth:`setup`, or pass a ``setup`` function. ``setup`` runs once,
    after the configuration is loaded and before anything starts; it only *registers* things
    (services in ``ctx.container``, workers, hooks), so ``config check`` can run it without
    side effects.

    Args:
        name: the module's name (default: the class attribute ``name``, else the class name in
            lower case); an App rejects two modules with the same name.
        setup: called with the :class:`Setup` context (instead of overriding :meth:`setup`).
        sections: config sections it owns, name -> pydantic model (default: the class attribute).
        flags: CLI flags it contributes (default: the class attribute).

    Example:
        >>> def setup(ctx: Setup) -> None:
        ...     ctx.on_shutdown(Phase.DRAIN, lambda: None, name="drain")
        >>> Module("jobs", setup=setup).name
        'jobs'
    """

    name: str = ""
    sections: Mapping[str, type[Any]] = {}
    flags: Sequence[Flag] = ()

    def __init__(
        self,
        name: str | None = None,
        *,
        setup: Callable[[Setup], object] | None = None,
        sections: Mapping[str, type[Any]] | None = None,
        flags: Sequence[Flag] | None = None,
    ) -> None:
        self.name = name or type(self).name or type(self).__name__.lower()
        self._setup = setup
        if sections is not None:
            self.sections = dict(sections)
        if flags is not None:
            self.flags = tuple(flags)

    def setup(self, ctx: Setup) -> None:
        """Register this module's services, workers and hooks (default: the ``setup`` function)."""
        setup = getattr(self, "_setup", None)
        if setup is not None:
            setup(ctx)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({module_name(self)!r})"


def module_name(module: Module) -> str:
    """A module's name, also for subclasses that did not call ``Module.__init__``."""
    return getattr(module, "name", "") or type(module).name or type(module).__name__.lower()


class Setup:
    """What a module's ``setup`` works with: the container, the settings, workers and hooks.

    Hook names are prefixed with the module's name (``orders.flush``); the shutdown log and
    report use them to blame a hook that overran.
    """

    __slots__ = ("_app", "_owner")

    def __init__(self, app: App, owner: str) -> None:
        self._app = app
        self._owner = owner

    @property
    def app(self) -> App:
        """The App being set up."""
        return self._app

    @property
    def module(self) -> str:
        """The name of the module being set up."""
        return self._owner

    @property
    def container(self) -> Container:
        """The App's DI container: register services here (``start``/``stop`` hooks included)."""
        return self._app.container

    @property
    def supervisor(self) -> Supervisor:
        """The App's worker supervisor."""
        return self._app.supervisor

    @property
    def clock(self) -> Clock:
        """The App's clock (a ``FakeClock`` in tests that inject one)."""
        return self._app.clock

    @property
    def log(self) -> logging.Logger:
        """A logger named after the module, ``buttress.app.<module>``."""
        return logging.getLogger(f"buttress.app.{self._owner}")

    @property
    def config(self) -> Loaded[Any] | None:
        """The loaded configuration (``None`` if the App has no settings at all)."""
        return self._app.config

    @overload
    def section(self, name: str) -> Any: ...
    @overload
    def section(self, name: str, model: type[S]) -> S: ...
    def section(self, name: str, model: type[Any] | None = None) -> Any:
        """The typed settings of config section ``name`` (see :meth:`buttress.config.Loaded.section`).

        Raises:
            KeyError: there is no such section (or no configuration at all).
        """
        loaded = self._app.config
        if loaded is None:
            raise KeyError(f"no config section {name!r} (the app has no settings)")
        return loaded.section(name) if model is None else loaded.section(name, model)

    def add_worker(
        self,
        fn: WorkerFunction,
        *,
        name: str | None = None,
        pool: int = 1,
        critical: bool = False,
        restart: RestartPolicy | None = None,
        kind: Literal["auto", "async", "thread"] = "auto",
    ) -> tuple[str, ...]:
        """Add a supervised worker (see :meth:`buttress.worker.Supervisor.add`); returns its names.

        Workers start after every service and start hook; a *critical* worker that is given up
        on stops the App with :attr:`ExitCode.CRITICAL_WORKER`.
        """
        return self._app.supervisor.add(fn, name=name, pool=pool, critical=critical, restart=restart,
                                        kind=kind)  # fmt: skip

    def on_start(self, hook: Hook, *, name: str | None = None) -> None:
        """Run ``hook`` at start-up, after the container's services and before the workers.

        Start hooks run in the order registered, sync ones in a daemon thread; the whole start-up
        is bounded by ``Timeouts.start``. If one fails, start-up is rolled back.
        """
        self._app._add_hook(ShutdownHook(self._hook_name(hook, name), hook, None, None, self._owner))

    def on_shutdown(self, phase: Phase, hook: Hook, *, name: str | None = None,
                    timeout: float | None = None) -> None:  # fmt: skip
        """Run ``hook`` in shutdown ``phase``, within ``timeout`` (default ``Timeouts.hook``) seconds.

        Hooks of one phase run one after another in the order registered. A hook that overruns
        is named in the log and the report, and the next one runs. On a failed start-up, only
        the hooks of modules whose start completed run.

        Raises:
            ConfigurationError: ``phase`` is not a :class:`Phase` or ``timeout`` is not positive.
        """
        p = Problems(f"on_shutdown of {self._owner!r}")
        if not isinstance(cast(object, phase), Phase):
            p.add(f"phase must be a Phase (got {phase!r})")
        if timeout is not None:
            p.positive("timeout", timeout, allow_inf=False)
        p.raise_if_any()
        self._app._add_hook(ShutdownHook(self._hook_name(hook, name), hook, phase, timeout, self._owner))

    def _hook_name(self, hook: Hook, name: str | None) -> str:
        return f"{self._owner}.{name or getattr(hook, '__name__', 'hook')}"

"""The App's options: where its configuration comes from, its timeouts, states and exit codes."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from buttress._validation import Problems, seconds

__all__ = ["AppState", "ConfigOptions", "ExitCode", "Timeouts", "default_prefix"]


class AppState(enum.Enum):
    """Where an :class:`~buttress.app.App` is in its one-way life."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class ExitCode(enum.IntEnum):
    """The process exit codes of :meth:`App.run() <buttress.app.App.run>` and the CLI.

    ``OK`` (0) clean stop; ``START_FAILED`` (1) start-up failed or was interrupted;
    ``CONFIG_INVALID`` (2) the configuration or the dependency graph is invalid;
    ``CRITICAL_WORKER`` (3) a critical worker was given up on; ``UNCLEAN_SHUTDOWN`` (4) a shutdown
    hook failed or overran; ``FORCED`` (130) a second SIGINT/SIGTERM forced the exit.
    """

    OK = 0
    START_FAILED = 1
    CONFIG_INVALID = 2
    CRITICAL_WORKER = 3
    UNCLEAN_SHUTDOWN = 4
    FORCED = 130


def _as_seconds(p: Problems, name: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    converted = seconds(value) if isinstance(value, timedelta) else value
    p.positive(name, converted, allow_inf=False)
    return converted if isinstance(converted, float | int) and not isinstance(converted, bool) else None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every time bound of an App's life, in seconds (``timedelta`` accepted).

    The defaults are gaz's: 10 s per shutdown hook, 30 s for the whole shutdown.

    Attributes:
        hook: the default timeout of one shutdown hook (a hook may set its own).
        shutdown: the global bound on all shutdown phases; hooks that would start after it are
            skipped, and a running hook is given only what is left of it.
        start: the bound on the whole start-up (config, setup, services, start hooks, workers);
            ``None`` for no bound.
        cancel_grace: how long a cancelled async worker or hook is given to unwind.

    Raises:
        ConfigurationError: listing every value that is not a positive, finite number.
    """

    hook: float = 10.0
    shutdown: float = 30.0
    start: float | None = 60.0
    cancel_grace: float = 1.0

    def __post_init__(self) -> None:
        p = Problems("Timeouts")
        values: dict[str, Any] = {
            "hook": _as_seconds(p, "hook", self.hook),
            "shutdown": _as_seconds(p, "shutdown", self.shutdown),
            "start": _as_seconds(p, "start", self.start, optional=True),
            "cancel_grace": _as_seconds(p, "cancel_grace", self.cancel_grace),
        }
        p.raise_if_any()
        for name, value in values.items():
            object.__setattr__(self, name, None if value is None else float(value))


@dataclass(frozen=True, slots=True)
class ConfigOptions:
    """Where an App's configuration is loaded from; see :func:`buttress.config.load`.

    The CLI fills ``file``, ``profile``, ``cli`` and ``flag_names`` from the command line; tests
    pass ``environ={}``, ``env_file=None`` and ``overrides`` to stay hermetic.

    Attributes:
        base: a pydantic model whose fields sit at the top level beside the modules' sections.
        file: the base config file (TOML, YAML, JSON).
        profile: the overlay profile (``config.<profile>.toml``).
        prefix: the environment prefix; default: the App's name upper-cased, ``-`` and other
            non-alphanumerics turned into ``_`` (``orders-service`` -> ``ORDERS_SERVICE``).
        env_file: the ``.env`` file, read if it exists; ``None`` to skip.
        environ: the environment (default ``os.environ``).
        cli: values parsed from the command line, keyed by dotted settings key.
        flag_names: dotted key -> the flag as typed, for provenance.
        overrides: the highest-precedence values, dotted keys or nested mappings.
        strict: reject unknown keys from every layer.
    """

    base: type[Any] | None = None
    file: str | os.PathLike[str] | None = None
    profile: str | None = None
    prefix: str | None = None
    env_file: str | os.PathLike[str] | None = ".env"
    environ: Mapping[str, str] | None = None
    cli: Mapping[str, object] = field(default_factory=dict)
    flag_names: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, object] = field(default_factory=dict)
    strict: bool = False


def default_prefix(app_name: str) -> str:
    """The environment prefix derived from an App's name (``orders-service`` -> ``ORDERS_SERVICE``)."""
    return re.sub(r"[^0-9A-Za-z]+", "_", app_name).strip("_").upper() or "APP"

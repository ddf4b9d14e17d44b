"""The application core: an App assembled from modules, one start-up path, a phased shutdown.

- :class:`App`: ``use`` modules, then ``run()`` (signals included), ``await serve()``,
  ``async with app:`` or the test harness; all start and stop the same way.
- :class:`Module` and its :class:`Setup` context: DI registrations, config sections, workers,
  CLI :class:`Flag` s, start hooks and shutdown hooks per :class:`Phase`.
- :class:`Timeouts`, :class:`ConfigOptions`; :class:`ShutdownReport`, :class:`StartupError`.

Standard library only; configuration sections need the ``config`` extra (pydantic). See
``docs/app.md``.
"""

from buttress.app._app import App
from buttress.app._errors import AppError, Stage, StartupError
from buttress.app._hooks import Hook, HookOutcome, HookStatus, Phase, ShutdownReport
from buttress.app._module import Flag, Module, Setup
from buttress.app._options import AppState, ConfigOptions, ExitCode, Timeouts

__all__ = [
    "App",
    "AppError",
    "AppState",
    "ConfigOptions",
    "ExitCode",
    "Flag",
    "Hook",
    "HookOutcome",
    "HookStatus",
    "Module",
    "Phase",
    "Setup",
    "ShutdownReport",
    "Stage",
    "StartupError",
    "Timeouts",
]

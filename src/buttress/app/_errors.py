"""The App's errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from buttress.errors import ButtressError

if TYPE_CHECKING:
    from buttress.app._hooks import ShutdownReport

__all__ = ["AppError", "Stage", "StartupError"]

Stage = Literal["config", "setup", "validate", "services", "hooks", "workers", "timeout", "interrupted"]


class AppError(ButtressError):
    """The root of the App's errors."""


class StartupError(AppError):
    """The App failed to start; what had started was stopped again, in reverse.

    The message names the stage, the failing component and why:
    ``app 'orders' failed to start: service Db failed to start: ConnectionError: refused``.

    Attributes:
        app: the App's name.
        stage: ``"config"`` (loading or validating settings), ``"setup"`` (a module's
            ``setup``), ``"validate"`` (the dependency graph), ``"services"`` (a container
            service's start), ``"hooks"`` (a start hook), ``"workers"``, ``"timeout"`` (the start
            timeout ran out) or ``"interrupted"`` (a stop was requested during start-up).
        component: the module, service or hook that failed (``""`` if none in particular).
        problems: every problem, one line each (all of a config or graph validation).
        rollback: the report of the rollback, if anything had to be stopped.
    """

    app: str
    stage: Stage
    component: str
    problems: tuple[str, ...]
    rollback: ShutdownReport | None

    def __init__(
        self,
        app: str,
        stage: Stage,
        component: str,
        reason: str,
        *,
        problems: tuple[str, ...] = (),
        rollback: ShutdownReport | None = None,
    ) -> None:
        super().__init__(f"app {app!r} failed to start: {reason}")
        self.app = app
        self.stage = stage
        self.component = component
        self.problems = problems or (reason,)
        self.rollback = rollback

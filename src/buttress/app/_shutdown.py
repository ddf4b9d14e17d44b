"""Running the shutdown plan: phase by phase, each hook timed out, all within a global bound."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from buttress.app._hooks import HookOutcome, HookStatus, Phase, ShutdownHook, ShutdownReport, run_hook

if TYPE_CHECKING:
    from buttress.app._app import App

__all__ = ["run_phases"]

_log = logging.getLogger("buttress.app")


def _phase(hook: ShutdownHook) -> str:
    return hook.phase.value if hook.phase is not None else "start"


async def run_phases(app: App, plan: list[ShutdownHook], reason: str) -> ShutdownReport:
    """Run ``plan`` in order; every hook within its timeout, the whole within ``Timeouts.shutdown``.

    The deadline is real time, kept by the event loop (as the supervisor's stop timeout is),
    because a shutdown bound must hold whatever clock the hooks use. A hook that overruns is
    blamed in the log and abandoned; a hook that raises is logged; either way the next runs.
    Hooks that would start after the deadline are skipped, and named too.
    """
    loop = asyncio.get_running_loop()
    timeouts = app.timeouts
    deadline = loop.time() + timeouts.shutdown
    began = app.clock.monotonic()
    outcomes: list[HookOutcome] = []
    phase: Phase | None = None
    for hook in plan:
        if hook.phase is not phase:
            phase = hook.phase
            _log.info("app %r shutdown phase %s", app.name, _phase(hook))
        left = deadline - loop.time()
        if left <= 0:
            _log.error("shutdown hook %r (phase %s) skipped: the global shutdown timeout of %gs ran out",
                       hook.name, _phase(hook), timeouts.shutdown)  # fmt: skip
            outcomes.append(HookOutcome(hook.name, hook.phase, "skipped", 0.0))
            continue
        own = hook.timeout if hook.timeout is not None else timeouts.hook
        limit = min(own, left)
        started = app.clock.monotonic()
        app.current_hook = hook.name
        detail = ""
        if hook.budgeted:
            # the App's own hooks bound themselves; the outer wait is only a safety net
            status, error, result = await run_hook(hook.name, hook.fn, limit + timeouts.cancel_grace,
                                                   args=(limit,))  # fmt: skip
            if status == "ok":
                status_text, detail = cast("tuple[str, str]", result)
                status = cast(HookStatus, status_text)
        else:
            status, error, _ = await run_hook(hook.name, hook.fn, limit)
        took = app.clock.monotonic() - started
        if status == "timed_out":
            why = "its" if limit == own else "what was left of the global"
            _log.error("shutdown hook %r (phase %s) overran %s %gs timeout and was abandoned; continuing%s",
                       hook.name, _phase(hook), why, limit, f" ({detail})" if detail else "")  # fmt: skip
        elif status == "failed":
            _log.error("shutdown hook %r (phase %s) failed: %s", hook.name, _phase(hook),
                       detail or f"{type(error).__name__}: {error}", exc_info=error)  # fmt: skip
        else:
            _log.debug("shutdown hook %r (phase %s) done in %.3fs", hook.name, _phase(hook), took)
        outcomes.append(HookOutcome(hook.name, hook.phase, status, took, error, detail))
    app.current_hook = None
    report = ShutdownReport(reason, tuple(outcomes), app.clock.monotonic() - began)
    if report.clean:
        _log.info("app %r stopped cleanly in %.3fs (%s)", app.name, report.seconds, reason)
    else:
        blame = ", ".join(f"{o.name} ({o.status.replace('_', ' ')})" for o in outcomes if o.status != "ok")
        _log.warning("app %r stopped in %.3fs (%s), not cleanly; blame: %s", app.name, report.seconds,
                     reason, blame)  # fmt: skip
    return report

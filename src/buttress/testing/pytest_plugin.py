"""The buttress pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``buttress_app``: a factory, ``buttress_app(app, config=..., overrides=...)`` -> a started
  :class:`~buttress.testing.AppHarness`; every App it started is stopped after the test, newest
  first, and a shutdown that was not clean fails the test's teardown with the blamed hooks.
- ``buttress_clock``: a fresh :class:`~buttress.testing.FakeClock`.

Only ``pytest`` is imported at load time, so the plugin costs nothing in suites that do not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from buttress.app import App
    from buttress.testing import AppHarness, FakeClock

__all__ = ["buttress_app", "buttress_clock"]

AppFactory = Callable[..., "AppHarness"]


@pytest.fixture
def buttress_clock() -> FakeClock:
    """A fresh fake clock at monotonic time 0."""
    from buttress.testing import FakeClock

    return FakeClock()


@pytest.fixture
def buttress_app() -> Iterator[AppFactory]:
    """Start Apps for this test; stop them all afterwards (and fail on an unclean shutdown).

    ``buttress_app(app, *, config=None, overrides=None, environ=None, start_timeout=10.0,
    stop_timeout=10.0, check_clean=True)`` returns the started harness.
    """
    from buttress.testing import AppHarness

    started: list[tuple[AppHarness, bool]] = []

    def start(app: App, *, config: Mapping[str, object] | None = None,
              overrides: Mapping[Any, object] | None = None, environ: Mapping[str, str] | None = None,
              start_timeout: float = 10.0, stop_timeout: float = 10.0,
              check_clean: bool = True) -> AppHarness:  # fmt: skip
        harness = AppHarness(app, config=config, overrides=overrides, environ=environ,
                             start_timeout=start_timeout, stop_timeout=stop_timeout)  # fmt: skip
        harness.start()
        started.append((harness, check_clean))
        return harness

    yield start
    unclean: list[str] = []
    for harness, check_clean in reversed(started):
        report = harness.close()
        if check_clean and report is not None and not report.clean:
            blamed = ", ".join(o.name + f" ({o.status})" for o in report.outcomes if o.status != "ok")
            unclean.append(f"app {harness.app.name!r}: {blamed}")
    if unclean:
        pytest.fail("shutdown was not clean: " + "; ".join(unclean))

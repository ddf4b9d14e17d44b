"""``App.run()`` with real signals in this process, and the test harness with its fixtures."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from buttress.app import App, ConfigOptions, ExitCode, Module, Phase, Setup, StartupError, Timeouts
from buttress.testing import AppHarness

pytest_plugins = ["pytester"]


class Greeter:
    def hello(self) -> str:
        return "hello"


class FakeGreeter(Greeter):
    def hello(self) -> str:
        return "fake"


def greeter_module(ctx: Setup) -> None:
    ctx.container.register(Greeter)


def test_run_stops_gracefully_on_sigterm_in_the_main_thread() -> None:
    def setup(ctx: Setup) -> None:
        # raised once the app is ready: the handler installed by run() turns it into a stop request
        ctx.add_worker(lambda: signal.raise_signal(signal.SIGTERM), kind="thread")

    app = App("sig", modules=[Module("m", setup=setup)], config=ConfigOptions(environ={}, env_file=None))
    assert app.run() == ExitCode.OK
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers were removed again


def test_a_second_signal_forces_the_exit_naming_the_running_hook(caplog: pytest.LogCaptureFixture) -> None:
    forced: list[int] = []
    release = threading.Event()

    def setup(ctx: Setup) -> None:
        ctx.add_worker(lambda: signal.raise_signal(signal.SIGINT), kind="thread")

        def stuck() -> None:
            signal.raise_signal(signal.SIGINT)  # the second signal arrives while this hook runs
            release.wait(1)

        ctx.on_shutdown(Phase.DRAIN, stuck)

    app = App("sig", modules=[Module("m", setup=setup)], timeouts=Timeouts(hook=0.05, shutdown=0.2))
    code = app.run(force_exit=forced.append)  # the fake force_exit lets the shutdown carry on
    release.set()
    assert forced == [130] and code == ExitCode.UNCLEAN_SHUTDOWN
    assert "received SIGINT again: forcing the exit, abandoning shutdown hook 'm.stuck'" in caplog.text


def test_serve_without_the_main_thread_skips_signal_handlers() -> None:
    codes: list[ExitCode] = []

    def runner() -> None:
        app = App("thread", modules=[Module("m", setup=lambda ctx: ctx.add_worker(ctx.app.request_stop))])
        codes.append(asyncio.run(app.serve(handle_signals=True)))

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join(5)
    assert codes == [ExitCode.OK]


def test_harness_runs_the_app_with_config_and_overrides() -> None:
    app = App("h", modules=[Module("greet", setup=greeter_module)])
    with AppHarness(app, overrides={Greeter: FakeGreeter()}) as harness:
        assert harness.app.ready
        assert harness.resolve(Greeter).hello() == "fake"
        assert harness.call(asyncio.sleep(0, result=7)) == 7
        with pytest.raises(RuntimeError, match="already started"):
            harness.start()
    assert harness.report is not None and harness.report.clean
    assert harness.close() is harness.report  # idempotent
    assert "AppHarness(App('h'" in repr(harness)
    with pytest.raises(RuntimeError, match="not started"):
        _ = AppHarness(App("n")).loop


def test_harness_start_failures_and_timeouts_surface() -> None:
    def bad(ctx: Setup) -> None:
        ctx.on_start(lambda: 1 / 0)

    with pytest.raises(StartupError, match="ZeroDivisionError"):
        AppHarness(App("bad", modules=[Module("m", setup=bad)])).start()

    def slow(ctx: Setup) -> None:
        ctx.on_start(asyncio.Event().wait)

    harness = AppHarness(App("slow", modules=[Module("m", setup=slow)]), start_timeout=0.02, stop_timeout=1)
    with pytest.raises(TimeoutError):
        harness.start()


def test_buttress_app_fixture_starts_and_stops(buttress_app: object, buttress_clock: object) -> None:
    from buttress.testing import FakeClock

    assert isinstance(buttress_clock, FakeClock)
    app = App("fx", modules=[Module("greet", setup=greeter_module)])
    harness = buttress_app(app, config={})  # type: ignore[operator]
    assert harness.resolve(Greeter).hello() == "hello"


def test_the_fixture_fails_teardown_on_an_unclean_shutdown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        from buttress.app import App, Module, Phase, Timeouts

        def setup(ctx):
            ctx.on_shutdown(Phase.DRAIN, asyncio.Event().wait, name="stuck")

        def test_it(buttress_app):
            buttress_app(App("t", modules=[Module("m", setup=setup)], timeouts=Timeouts(hook=0.01)))
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*shutdown was not clean: app 't': m.stuck (timed_out)*"])

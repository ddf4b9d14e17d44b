"""App start-up order, rollback, readiness and the phased shutdown, in process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from buttress.app import (
    App,
    AppState,
    ConfigOptions,
    ExitCode,
    Flag,
    Module,
    Phase,
    Setup,
    StartupError,
    Timeouts,
)
from buttress.errors import ConfigurationError
from buttress.worker import RestartPolicy, StopSignal

HERMETIC = ConfigOptions(environ={}, env_file=None)


LOG: list[str] = []


class Db:
    def start(self) -> None:
        LOG.append("db up")

    def stop(self) -> None:
        LOG.append("db down")


class Cache:
    def __init__(self, db: Db) -> None: ...

    def start(self) -> None:
        raise ConnectionError("refused")

    def stop(self) -> None:
        LOG.append("cache down")  # never started: must not be stopped


class Repo:
    def __init__(self, db: Db) -> None: ...


class Service:
    def __init__(self, repo: Repo) -> None: ...


def make_app(*modules: Module, timeouts: Timeouts | None = None, **config: Any) -> App:
    options = ConfigOptions(**{"environ": {}, "env_file": None, **config})
    return App("test", modules=modules, config=options, timeouts=timeouts)


def test_start_runs_services_hooks_workers_in_order_and_stop_runs_phases_in_order() -> None:
    log: list[str] = []

    class Pool:
        async def start(self) -> None:
            log.append("service start")

        async def stop(self) -> None:
            log.append("service stop")

    seen_ready: list[bool] = []

    def recorder(text: str) -> Callable[[], None]:
        return lambda: log.append(text)

    def setup(ctx: Setup) -> None:
        ctx.container.register(Pool, eager=True)

        async def worker(stop: StopSignal) -> None:
            log.append("worker start")
            await stop.wait_async()
            log.append("worker stop")

        ctx.add_worker(worker)
        ctx.on_start(lambda: log.append("start hook"), name="hello")
        for phase in Phase:
            ctx.on_shutdown(phase, recorder(phase.value), name=phase.value)
        ctx.on_shutdown(Phase.STOP_ACCEPTING, lambda: seen_ready.append(ctx.app.ready), name="probe")

    app = make_app(Module("core", setup=setup))

    async def main() -> None:
        async with app:
            assert app.ready and app.state is AppState.RUNNING
            while "worker start" not in log:  # noqa: ASYNC110 - a condition set by another task
                await asyncio.sleep(0)
        assert app.state.value == "stopped" and not app.ready

    asyncio.run(main())
    assert log == ["service start", "start hook", "worker start", "stop_accepting", "drain", "worker stop",
                   "stop_workers", "flush_telemetry", "close_clients", "service stop"]  # fmt: skip
    assert seen_ready == [False]  # readiness failed before the first phase


def test_a_failing_service_rolls_back_only_what_started_and_names_it() -> None:
    log = LOG
    log.clear()

    def setup(ctx: Setup) -> None:
        ctx.container.register(Db)
        ctx.container.register(Cache)
        ctx.on_shutdown(Phase.DRAIN, lambda: log.append("module drain"))

    app = make_app(Module("core", setup=setup))
    with pytest.raises(StartupError) as caught:
        asyncio.run(app.start())
    error = caught.value
    assert (error.stage, error.component) == ("services", "Cache")
    assert str(error) == "app 'test' failed to start: service Cache failed to start: ConnectionError: refused"
    assert log == ["db up", "db down"]
    assert app.state is AppState.FAILED
    assert error.rollback is not None and error.rollback.reason == "rollback"


def test_a_failing_start_hook_rolls_back_the_modules_that_started() -> None:
    log: list[str] = []

    def first(ctx: Setup) -> None:
        ctx.on_start(lambda: log.append("first started"))
        ctx.on_shutdown(Phase.CLOSE_CLIENTS, lambda: log.append("first closed"), name="close")

    def second(ctx: Setup) -> None:
        def boom() -> None:
            raise RuntimeError("no license")

        ctx.on_start(boom)
        ctx.on_shutdown(Phase.CLOSE_CLIENTS, lambda: log.append("second closed"), name="close")

    app = make_app(Module("first", setup=first), Module("second", setup=second))
    with pytest.raises(
        StartupError, match=r"start hook second.boom failed: RuntimeError: no license"
    ) as caught:
        asyncio.run(app.start())
    assert caught.value.component == "second.boom"
    assert log == ["first started", "first closed"]
    with pytest.raises(RuntimeError, match="already started"):
        asyncio.run(app.start())


def test_setup_and_graph_failures_are_reported_before_anything_starts() -> None:
    def broken(ctx: Setup) -> None:
        raise KeyError("oops")

    assert make_app(Module("bad", setup=broken)).check() == (
        "setup of module 'bad' failed: KeyError: 'oops'",
    )

    def wiring(ctx: Setup) -> None:
        ctx.container.register(Service)

    problems = make_app(Module("wiring", setup=wiring)).check()
    assert problems == ("not found: Repo (needed by Service)",)
    app = make_app(Module("wiring", setup=wiring))
    code = asyncio.run(app.serve())
    assert code is ExitCode.CONFIG_INVALID


class HttpSettings(BaseModel):
    port: int = 8000


def test_module_sections_are_loaded_and_conflicts_name_both_modules() -> None:
    seen: list[int] = []

    class Http(Module):
        name = "http"
        sections = {"http": HttpSettings}

        def setup(self, ctx: Setup) -> None:
            seen.append(ctx.section("http", HttpSettings).port)

    app = make_app(Http(), overrides={"http.port": 81})
    assert app.check() == ()
    assert seen == [81] and app.config is not None
    clash = make_app(Http(), Module("admin", sections={"http": HttpSettings}))
    assert clash.check() == ("http: section claimed by both 'http' and 'admin'",)
    assert make_app(Http(), environ={"TEST_HTTP__PORT": "x"}).check() == (
        "http.port: must be a valid integer, unable to parse string as an integer (got x), "
        "from env TEST_HTTP__PORT",
    )
    assert make_app(Module("plain")).load_config() is None
    with pytest.raises(KeyError, match="no config section 'x'"):
        Setup(make_app(), "m").section("x")


def test_use_rejects_duplicate_module_names_and_flags() -> None:
    app = App("dup", modules=[Module("a", flags=[Flag("--port", "a.port", type=int)])])
    with pytest.raises(ConfigurationError, match=r"module name 'a' is already used by Module\('a'\)"):
        app.use(Module("a"))
    with pytest.raises(
        ConfigurationError, match="flag --port of module 'b' is already defined by module 'a'"
    ):
        app.use(Module("b", flags=[Flag("--port", "b.port")]))
    with pytest.raises(ConfigurationError, match="module must be a Module"):
        app.use("nope")  # type: ignore[arg-type]
    assert [f.name for f in app.flags()] == ["--port"] and app.modules[0].name == "a"
    with pytest.raises(ConfigurationError) as caught:
        Flag("port", "", type=list)
    assert len(caught.value.problems) == 3


def test_a_hanging_hook_is_blamed_and_the_global_timeout_skips_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def setup(ctx: Setup) -> None:
        ctx.on_shutdown(Phase.DRAIN, release.wait, name="hang")  # a sync hook stuck in its thread
        ctx.on_shutdown(Phase.DRAIN, asyncio.Event().wait, name="async_hang", timeout=0.05)
        ctx.on_shutdown(Phase.FLUSH_TELEMETRY, lambda: None, name="late")

    def fail(ctx: Setup) -> None:
        def broken() -> None:
            raise OSError("disk full")

        ctx.on_shutdown(Phase.STOP_ACCEPTING, broken)

    app = make_app(Module("slow", setup=setup), Module("bad", setup=fail),
                   timeouts=Timeouts(hook=0.04, shutdown=0.06))  # fmt: skip

    async def main() -> None:
        await app.start()
        report = await app.stop()
        assert await app.stop() is report  # idempotent
        statuses = {o.name: o.status for o in report.outcomes}
        assert statuses["bad.broken"] == "failed" and statuses["slow.hang"] == "timed_out"
        assert statuses["slow.async_hang"] == "timed_out" and statuses["slow.late"] == "skipped"
        assert report.blamed[:2] == ("slow.hang", "slow.async_hang") and not report.clean
        assert report.failed[0][0] == "bad.broken"

    asyncio.run(main())  # real time: 0.06 s of timeouts
    release.set()
    assert "shutdown hook 'slow.hang' (phase drain) overran its 0.04s timeout" in caplog.text
    assert "'slow.async_hang' (phase drain) overran what was left of the global" in caplog.text
    assert "shutdown hook 'slow.late' (phase flush_telemetry) skipped" in caplog.text


def test_start_timeout_and_interruption_roll_back() -> None:
    def setup(ctx: Setup) -> None:
        ctx.on_start(asyncio.Event().wait, name="forever")

    app = make_app(Module("m", setup=setup), timeouts=Timeouts(start=0.02))
    with pytest.raises(StartupError, match=r"did not finish within 0.02s \(stuck in hooks m.forever\)"):
        asyncio.run(app.start())

    interrupted = make_app(Module("m", setup=setup))

    async def main() -> ExitCode:
        serving = asyncio.create_task(interrupted.serve())
        await asyncio.sleep(0.01)
        interrupted.request_stop("test")
        return await serving

    assert asyncio.run(main()) is ExitCode.START_FAILED
    assert interrupted.state is AppState.FAILED


def test_a_critical_worker_failure_stops_the_app_with_its_exit_code() -> None:
    async def doomed() -> None:
        raise RuntimeError("gateway gone")

    def setup(ctx: Setup) -> None:
        ctx.add_worker(doomed, critical=True, restart=RestartPolicy(max_failures=1))

    app = make_app(Module("m", setup=setup))
    assert asyncio.run(app.serve()) is ExitCode.CRITICAL_WORKER
    assert app.state is AppState.STOPPED


def test_request_stop_from_another_thread_and_unclean_exit_code() -> None:
    def setup(ctx: Setup) -> None:
        def stopper(stop: StopSignal) -> None:  # a thread worker asks the app to stop
            ctx.app.request_stop("from a thread")
            stop.wait(5)

        ctx.add_worker(stopper)
        ctx.on_shutdown(Phase.DRAIN, asyncio.Event().wait, name="stuck", timeout=0.01)

    app = make_app(Module("m", setup=setup))
    assert asyncio.run(app.serve()) is ExitCode.UNCLEAN_SHUTDOWN


def test_options_are_validated_and_stop_before_start_is_harmless() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Timeouts(hook=0, shutdown=float("inf"), start=-1, cancel_grace="x")  # type: ignore[arg-type]
    assert len(caught.value.problems) == 4
    from datetime import timedelta

    assert Timeouts(hook=timedelta(seconds=2), start=None).hook == 2.0  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="name must be a non-empty string"):
        App(" ", config="x", timeouts=3)  # type: ignore[arg-type]
    app = App("my-orders.service")
    assert app.prefix == "MY_ORDERS_SERVICE"
    assert asyncio.run(app.stop()).outcomes == ()
    with pytest.raises(RuntimeError, match="cannot be stopped"):
        asyncio.run(App("x", config=HERMETIC).stop()) if False else asyncio.run(_stop_failed())
    with pytest.raises(ConfigurationError, match="phase must be a Phase"):
        app.on_shutdown("drain", lambda: None)  # type: ignore[arg-type]
    app2 = App("y")
    app2.prepare()
    with pytest.raises(RuntimeError, match="already set up"):
        app2.override(int, instance=1)
    with pytest.raises(ConfigurationError, match="already set up"):
        app2.use(Module("late"))


async def _stop_failed() -> None:
    def setup(ctx: Setup) -> None:
        raise ValueError("x")

    app = make_app(Module("m", setup=setup))
    with pytest.raises(StartupError):
        await app.start()
    await app.stop()


def test_overrides_replace_registrations_after_setup() -> None:
    fake = Db()
    app = make_app(Module("m", setup=lambda ctx: ctx.container.register(Db)))
    app.override(Db, instance=fake)
    app.on_start(lambda: None)
    app.prepare()
    assert app.container.resolve(Db) is fake
    assert "state=created" in repr(app)

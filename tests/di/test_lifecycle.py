"""Start in dependency layers, roll back only what started, stop in reverse with timed-out hooks named."""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol

import pytest

from buttress.di import Container, StartError, StopResult

LOG: list[str] = []


class Storage(Protocol):
    def put(self, key: str) -> None: ...


class Db:
    async def start(self) -> None:
        LOG.append("start Db")

    async def stop(self) -> None:
        LOG.append("stop Db")


class S3Storage:
    def __init__(self, db: Db) -> None:
        self.db = db

    def put(self, key: str) -> None:
        pass

    def start(self) -> None:
        LOG.append("start S3Storage")

    def stop(self) -> None:
        LOG.append("stop S3Storage")


class Cache:
    def __init__(self, db: Db) -> None:
        pass

    async def start(self) -> None:
        LOG.append("start Cache")

    async def stop(self) -> None:
        LOG.append("stop Cache")


class Api:
    def __init__(self, storage: Storage, cache: Cache) -> None:
        pass

    async def start(self) -> None:
        LOG.append("start Api")

    async def stop(self) -> None:
        LOG.append("stop Api")


def make_storage(db: Db) -> Storage:
    return S3Storage(db)


def app() -> Container:
    LOG.clear()
    c = Container()
    c.register(Db)
    c.register(Storage, make_storage)  # interface-typed: the implementation's hooks still run
    c.register(Cache)
    c.register(Api)
    return c


def test_start_in_layers_and_stop_in_reverse() -> None:
    c = app()

    async def main() -> StopResult:
        await c.start()
        assert LOG[0] == "start Db"
        assert set(LOG[1:3]) == {"start S3Storage", "start Cache"}
        assert LOG[3] == "start Api"
        assert c.started_services() == ["Db", "Storage", "Cache", "Api"]
        LOG.clear()
        return await c.stop(hook_timeout=1)

    result = asyncio.run(main())
    assert LOG[0] == "stop Api"
    assert set(LOG[1:3]) == {"stop S3Storage", "stop Cache"}
    assert LOG[3] == "stop Db"
    assert result.ok
    assert sorted(result.stopped) == ["Api", "Cache", "Db", "Storage"]
    assert c.started_services() == []


def test_failed_start_rolls_back_only_the_started_in_reverse() -> None:
    c = app()

    async def broken(cache: Cache) -> None:
        LOG.append("start Cache (failing)")
        raise ConnectionError("cache unreachable")

    c.register(Cache, on_start=broken)

    async def main() -> None:
        with pytest.raises(StartError) as info:
            await c.start()
        err = info.value
        assert err.service == "Cache"
        assert str(err) == "service Cache failed to start: ConnectionError: cache unreachable"
        assert isinstance(err.__cause__, ConnectionError)
        assert isinstance(err.stop_result, StopResult)
        assert sorted(err.stop_result.stopped) == ["Db", "Storage"]

    asyncio.run(main())
    assert "start Api" not in LOG
    assert "stop Api" not in LOG  # never started, never stopped
    assert "stop Cache" not in LOG
    assert LOG.index("stop S3Storage") < LOG.index("stop Db")
    assert c.started_services() == []


def test_hanging_and_failing_stop_hooks_are_named_not_waited_for() -> None:
    c = app()
    release = threading.Event()

    def hang(storage: object) -> None:
        release.wait(5)

    async def ahang(api: Api) -> None:
        await asyncio.Event().wait()

    async def fail(db: Db) -> None:
        raise OSError("flush failed")

    c.register(Storage, make_storage, on_stop=hang)
    c.register(Api, on_stop=ahang)
    c.register(Db, on_stop=fail)

    async def main() -> StopResult:
        await c.start()
        return await c.stop(hook_timeout=0.02)

    try:
        result = asyncio.run(main())
    finally:
        release.set()
    assert sorted(result.timed_out) == ["Api", "Storage"]
    assert [(name, type(exc)) for name, exc in result.failed] == [("Db", OSError)]
    assert result.stopped == ("Cache",)
    assert not result.ok


POOL_LOG: list[str] = []
RELEASE = threading.Event()


class Pool:
    def start(self) -> None:
        POOL_LOG.append("start Pool")

    def stop(self) -> None:
        RELEASE.wait(5)


class Worker:
    def __init__(self, pool: Pool) -> None:
        pass


def test_sync_lifecycle_with_timeout_and_rollback() -> None:
    log = POOL_LOG
    log.clear()
    release = RELEASE
    release.clear()
    c = Container()
    c.register(Pool)
    c.register(
        Worker, on_start=lambda w: log.append("start Worker"), on_stop=lambda w: log.append("stop Worker")
    )
    c.start_sync()
    assert log == ["start Pool", "start Worker"]
    try:
        result = c.stop_sync(hook_timeout=0.02)
    finally:
        release.set()
    assert result.stopped == ("Worker",)
    assert result.timed_out == ("Pool",)

    def fail(w: object) -> None:
        raise RuntimeError("nope")

    c.register(Worker, on_start=fail)
    with pytest.raises(StartError, match="service Worker failed to start: RuntimeError: nope") as info:
        c.start_sync()
    assert info.value.stop_result.timed_out == ()  # type: ignore[attr-defined]
    assert c.started_services() == []


def test_async_hooks_from_sync_start_and_eager_and_creation_failure() -> None:
    log: list[str] = []

    class Job:
        async def start(self) -> None:
            log.append("start")

        async def stop(self) -> None:
            log.append("stop")

    c = Container()
    c.register(Job)
    c.register(int, lambda: log.append("eager") or 1, eager=True)  # type: ignore[func-returns-value]
    with c:
        assert log == ["eager", "start"]
    assert log == ["eager", "start", "stop"]

    def boom() -> str:
        raise ValueError("no config")

    c.register(str, boom, eager=True)
    with pytest.raises(StartError, match="service str failed to start: ValueError: no config"):
        c.start_sync()
    with pytest.raises(StartError, match="service str failed to start"):
        asyncio.run(c.start())


def test_async_context_manager_runs_the_whole_lifecycle() -> None:
    c = app()

    async def main() -> None:
        async with c:
            assert len(c.started_services()) == 4
        assert c.started_services() == []

    asyncio.run(main())
    assert LOG[-1] == "stop Db"

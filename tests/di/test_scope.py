"""Scopes, generator finalizers (reverse order, errors collected), scope and captive errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from buttress.di import CaptiveDependencyError, Container, FinalizerError, Scope, ScopeError


class Db:
    pass


class Session:
    def __init__(self, db: Db) -> None:
        self.db = db


class Handler:
    def __init__(self, session: Session, db: Db) -> None:
        self.session = session


def test_scoped_is_one_per_scope() -> None:
    c = Container()
    c.register(Db)
    c.register(Session, lifetime="scoped")
    c.register(Handler, lifetime="transient")
    with c.scope() as one:
        h1, h2 = one.resolve(Handler), one.resolve(Handler)
        assert h1 is not h2
        assert h1.session is h2.session is one.resolve(Session)
    with c.scope() as two:
        assert two.resolve(Session) is not h1.session
        assert two.resolve(Db) is c.resolve(Db)
        assert two.resolve_all(Session) == [two.resolve(Session)]


def test_scoped_outside_a_scope_is_an_error() -> None:
    c = Container()
    c.register(Db)
    c.register(Session, lifetime="scoped")
    c.register(Handler, lifetime="transient")
    with pytest.raises(ScopeError) as info:
        c.resolve(Handler)
    assert str(info.value).startswith(
        "Session is scoped and cannot be resolved outside a scope (needed by Handler)"
    )


def test_captive_dependency_is_an_error() -> None:
    c = Container()
    c.register(Db)
    c.register(Session, lifetime="scoped")
    c.register(Handler)  # a singleton capturing a scoped Session
    with c.scope() as scope, pytest.raises(CaptiveDependencyError) as info:
        scope.resolve(Handler)
    assert (
        str(info.value)
        == "captive dependency: singleton Handler would capture scoped Session (Handler -> Session)"
    )


def test_scope_is_injectable() -> None:
    c = Container()

    def make(scope: Scope) -> int:
        return id(scope)

    c.register(int, make, lifetime="scoped")
    with c.scope() as scope:
        assert scope.resolve(int) == id(scope)
    with pytest.raises(ScopeError):
        c.resolve(int)
    c.register(int, make, lifetime="transient")
    with pytest.raises(ScopeError, match="Scope is scoped"):
        c.resolve(int)


def test_finalizers_run_in_reverse_order_and_errors_are_collected() -> None:
    log: list[str] = []

    def db() -> Iterator[Db]:
        log.append("open db")
        yield Db()
        log.append("close db")

    def session(db: Db) -> Iterator[Session]:
        log.append("open session")
        yield Session(db)
        log.append("close session")
        raise RuntimeError("session close failed")

    def handler(session: Session, db: Db) -> Iterator[Handler]:
        yield Handler(session, db)
        log.append("close handler")

    c = Container()
    c.register(Db, db)
    c.register(Session, session, lifetime="scoped")
    c.register(Handler, handler, lifetime="transient")
    scope = c.scope()
    scope.resolve(Handler)
    assert log == ["open db", "open session"]
    with pytest.raises(FinalizerError) as info:
        scope.close()
    assert log == ["open db", "open session", "close handler", "close session"]
    assert [name for name, _ in info.value.errors] == ["Session"]
    assert "1 finalizer(s) failed: Session: RuntimeError: session close failed" in str(info.value)
    c.close()
    assert log[-1] == "close db"
    # close forgets singletons: a new Db is opened next time
    c.resolve(Db)
    assert log[-1] == "open db"


def test_generator_yielding_twice_is_reported() -> None:
    def twice() -> Iterator[Db]:
        yield Db()
        yield Db()

    c = Container()
    c.register(Db, twice, lifetime="transient")
    c.resolve(Db)
    with pytest.raises(FinalizerError, match="yielded more than once"):
        c.close()


def test_async_generators_and_async_scope() -> None:
    log: list[str] = []

    async def db() -> AsyncIterator[Db]:
        log.append("open db")
        yield Db()
        log.append("close db")

    async def session(db: Db) -> AsyncIterator[Session]:
        yield Session(db)
        log.append("close session")

    def handler(session: Session, db: Db) -> Iterator[Handler]:
        yield Handler(session, db)
        log.append("close handler")

    async def twice() -> AsyncIterator[int]:
        yield 1
        yield 2

    async def failing() -> AsyncIterator[str]:
        yield "x"
        raise ValueError("bad")

    c = Container()
    c.register(Db, db)
    c.register(Session, session, lifetime="scoped")
    c.register(Handler, handler, lifetime="scoped")
    c.register(int, twice, lifetime="scoped")
    c.register(str, failing, lifetime="scoped")

    async def main() -> None:
        async with c.ascope() as scope:
            h = await scope.aresolve(Handler)
            assert h.session is await scope.aresolve(Session)
            assert await scope.aresolve_all(Handler) == [h]
        assert log == ["open db", "close handler", "close session"]
        scope = c.ascope()
        await scope.aresolve(int)
        await scope.aresolve(str)
        with pytest.raises(FinalizerError) as info:
            await scope.aclose()
        assert [n for n, _ in info.value.errors] == ["str", "int"]
        await c.aclose()
        assert log[-1] == "close db"

    asyncio.run(main())


def test_sync_close_reports_async_finalizers() -> None:
    async def db() -> AsyncIterator[Db]:
        yield Db()

    c = Container()
    c.register(Db, db)
    asyncio.run(c.aresolve(Db))
    with pytest.raises(FinalizerError, match="async finalizer; close with `await aclose"):
        c.close()
    scope = c.scope()
    asyncio.run(scope.aresolve(Db))
    scope.close()  # the singleton's finalizer belongs to the container, not the scope

"""Registration and resolution: lifetimes, names, groups, optional and default parameters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import pytest

from buttress.di import (
    AmbiguousError,
    Container,
    Named,
    NotFoundError,
    RegistrationError,
)
from buttress.errors import ConfigurationError


class Settings:
    def __init__(self) -> None:
        self.dsn = "sqlite://"


class Db:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class UserRepo:
    def __init__(self, db: Db) -> None:
        self.db = db


class UserService:
    def __init__(self, repo: UserRepo, settings: Settings) -> None:
        self.repo = repo
        self.settings = settings


def graph_container(lifetime: str = "transient") -> Container:
    c = Container()
    c.register(Settings)
    c.register(Db)
    c.register(UserRepo, lifetime="transient")
    c.register(UserService, lifetime="transient")
    return c


def test_singleton_is_lazy_and_shared_transient_is_new() -> None:
    made: list[int] = []

    def make_settings() -> Settings:
        made.append(1)
        return Settings()

    c = Container()
    c.register(Settings, make_settings)
    c.register(UserRepo, lifetime="transient")
    c.register(Db)
    assert made == []
    a, b = c.resolve(UserRepo), c.resolve(UserRepo)
    assert a is not b
    assert a.db is b.db
    assert a.db.settings is c.resolve(Settings)
    assert made == [1]


def test_three_level_graph_shares_singletons() -> None:
    c = graph_container()
    service = c.resolve(UserService)
    assert service.repo.db.settings is service.settings
    assert c.resolve(UserService) is not service


def test_instance_and_inferred_key_and_provide_decorator() -> None:
    c = Container()
    settings = Settings()
    c.register(Settings, instance=settings)

    @c.provide
    def make_db(settings: Settings) -> Db:
        return Db(settings)

    assert c.resolve(Db).settings is settings
    c.register(make_db)
    assert c.resolve(Db) is c.resolve(Db)


def test_named_registrations_and_annotated_consumers() -> None:
    c = Container()
    c.register(str, instance="primary")
    c.register(str, instance="replica", name="replica")
    c.register(Annotated[str, Named("audit")], instance="audit")

    def pick(
        main: str, replica: Annotated[str, Named("replica")], *, audit: Annotated[str, Named("audit")]
    ) -> int:
        return len(main) + len(replica) * 10 + len(audit) * 100

    c.register(int, pick, lifetime="transient")
    assert c.resolve(int) == 7 + 70 + 500
    assert c.resolve(str, "replica") == "replica"
    assert c.resolve(Annotated[str, Named("audit")]) == "audit"  # type: ignore[arg-type]


class Plugin:
    pass


class PluginA(Plugin):
    pass


class PluginB(Plugin):
    pass


def test_groups_in_registration_order_and_ambiguity() -> None:
    c = Container()
    c.register(Plugin, PluginA, group=True)
    c.register_many(Plugin, PluginB, lifetime="transient")

    @dataclass
    class Host:
        plugins: list[Plugin]
        seq: Sequence[Plugin]

    c.register(Host, lifetime="transient")
    host = c.resolve(Host)
    assert [type(p) for p in host.plugins] == [PluginA, PluginB]
    assert host.seq[0] is host.plugins[0]  # the singleton member is shared
    assert [type(p) for p in c.resolve_all(Plugin)] == [PluginA, PluginB]
    with pytest.raises(AmbiguousError) as info:
        c.resolve(Plugin)
    assert str(info.value) == (
        "ambiguous: 2 providers for Plugin (PluginA, PluginB); "
        "inject list[Plugin] or call resolve_all(Plugin)"
    )
    assert info.value.candidates == ("PluginA", "PluginB")
    assert c.resolve_all(Db) == []


def test_ambiguity_inside_a_graph_names_the_chain() -> None:
    c = Container()
    c.register_many(Plugin, PluginA, PluginB)

    def use(plugin: Plugin) -> int:
        return 1

    c.register(int, use)
    with pytest.raises(AmbiguousError, match=r"\(PluginA, PluginB\) \(needed by int\)"):
        c.resolve(int)


def test_registering_again_replaces_and_invalidates() -> None:
    c = graph_container()
    first = c.resolve(UserService)
    replacement = Settings()
    c.register(Settings, instance=replacement)
    second = c.resolve(UserService)
    assert first.settings is not replacement
    assert second.settings is replacement
    assert second.repo.db.settings is replacement  # the Db singleton was rebuilt


def test_optional_and_default_parameters() -> None:
    c = Container()

    def make(db: Db | None, name: str = "x", *, port: int = 5) -> tuple[object, str, int]:
        return (db, name, port)

    c.register(tuple, make, lifetime="transient")
    assert c.resolve(tuple) == (None, "x", 5)
    c.register(int, instance=7)
    assert c.resolve(tuple) == (None, "x", 7)
    c.register(Settings)
    c.register(Db)
    db, _, _ = c.resolve(tuple)
    assert isinstance(db, Db)


def test_not_found_names_the_whole_chain() -> None:
    c = Container()
    c.register(UserRepo)
    c.register(UserService)
    c.register(Settings)
    with pytest.raises(NotFoundError) as info:
        c.resolve(UserService)
    assert str(info.value) == "not found: Db (needed by UserRepo <- UserService)"
    assert info.value.key == "Db"
    assert info.value.chain == ("UserService", "UserRepo")
    with pytest.raises(NotFoundError, match=r"^not found: Db$"):
        c.resolve(Db)
    with pytest.raises(NotFoundError, match=r"^not found: str\[name='nope'\]$"):
        c.resolve(str, "nope")
    assert isinstance(info.value, LookupError)


def test_provider_errors_pass_through_with_a_note_and_are_retried() -> None:
    calls: list[int] = []

    def flaky() -> Settings:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("db down")
        return Settings()

    c = Container()
    c.register(Settings, flaky)
    c.register(Db)
    with pytest.raises(OSError, match="db down") as info:
        c.resolve(Db)
    assert "while resolving Settings with flaky (needed by Db)" in (info.value.__notes__[0])
    assert "(needed by Db)" in info.value.__notes__[0]
    assert len(info.value.__notes__) == 1
    assert isinstance(c.resolve(Db), Db)  # not cached as broken
    assert len(calls) == 2


def test_container_is_injectable() -> None:
    c = Container()

    def make(container: Container) -> int:
        return 1 if container is c else 0

    c.register(int, make)
    assert c.resolve(int) == 1


def test_bad_registrations_report_every_problem() -> None:
    c = Container()
    with pytest.raises(ConfigurationError) as info:
        c.register(Db, Db, instance=Db(Settings()), lifetime="scoped", eager=True)
    assert len(info.value.problems) == 3
    with pytest.raises(ConfigurationError, match="lifetime must be one of"):
        c.register(Db, lifetime="forever")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="is not a class"):
        c.register("x")

    def no_return():  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(RegistrationError, match="has no return type hint"):
        c.register(no_return)

    def untyped(x) -> int:  # type: ignore[no-untyped-def]
        return 1

    c.register(int, untyped)
    with pytest.raises(
        RegistrationError, match=r"parameter 'x' of .*untyped has no type hint and no default"
    ):
        c.resolve(int)

    def broken(x: Undefined) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 1

    c.register(int, broken)
    with pytest.raises(RegistrationError, match=r"cannot read the type hints of .*broken"):
        c.resolve(int)


def test_async_providers_and_sync_resolve_error() -> None:
    from buttress.di import AsyncProviderError

    async def make_settings() -> Settings:
        await asyncio.sleep(0)
        return Settings()

    c = Container()
    c.register(Settings, make_settings)
    c.register(Db, lifetime="transient")
    with pytest.raises(AsyncProviderError) as info:
        c.resolve(Db)
    assert str(info.value) == (
        "Settings has an async provider and cannot be resolved synchronously (needed by Db); "
        "use `await container.aresolve(...)`"
    )

    async def main() -> None:
        db = await c.aresolve(Db)
        assert db.settings is await c.aresolve(Settings)
        assert [x.settings for x in await c.aresolve_all(Db)] == [db.settings]

    asyncio.run(main())
    # once created, the async singleton is reachable synchronously too
    assert c.resolve(Db).settings is c.resolve(Settings)


def test_async_transient_coroutine_provider() -> None:
    async def make(settings: Settings) -> Db:
        return Db(settings)

    c = Container()
    c.register(Settings)
    c.register(Db, make, lifetime="transient")

    async def main() -> tuple[Db, Db]:
        return await c.aresolve(Db), await c.aresolve(Db)

    a, b = asyncio.run(main())
    assert a is not b
    assert a.settings is b.settings
    with pytest.raises(Exception, match="async provider"):
        c.resolve(Db)

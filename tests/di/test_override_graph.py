"""Overrides (restoring, invalidating dependents), validate() and the graph."""

from __future__ import annotations

from typing import Annotated

import pytest

from buttress.di import (
    CaptiveDependencyError,
    Container,
    CycleError,
    Named,
    NotFoundError,
    ValidationError,
)


class Db:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


class Repo:
    def __init__(self, db: Db) -> None:
        self.db = db


class Service:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo


def app() -> Container:
    c = Container()
    c.register(str, instance="real://")
    c.register(Db)
    c.register(Repo)
    c.register(Service)
    return c


def test_override_after_resolve_invalidates_dependents_and_restores() -> None:
    c = app()
    service = c.resolve(Service)
    real_db = c.resolve(Db)
    fake = Db("fake://")
    with c.override(Db, instance=fake):
        assert c.resolve(Db) is fake
        overridden = c.resolve(Service)
        assert overridden is not service
        assert overridden.repo.db is fake
    restored = c.resolve(Service)
    assert c.resolve(Db) is real_db  # the original singleton is back, not rebuilt
    assert restored.repo.db is real_db
    assert restored is not overridden


def test_override_with_a_provider_and_nested_and_restore_twice() -> None:
    c = app()
    with c.override(str, lambda: "outer://") as outer:
        with c.override(str, instance="inner://"):
            assert c.resolve(Service).repo.db.dsn == "inner://"
        assert c.resolve(Service).repo.db.dsn == "outer://"
        outer.restore()
        assert c.resolve(Service).repo.db.dsn == "real://"
    assert c.resolve(Service).repo.db.dsn == "real://"


def test_override_of_an_unregistered_named_key_is_removed_on_restore() -> None:
    c = Container()
    with c.override(Annotated[str, Named("x")], instance="1"):
        assert c.resolve(str, "x") == "1"
    with pytest.raises(NotFoundError):
        c.resolve(str, "x")


class Cache:
    pass


class User:
    def __init__(self, cache: Cache | None) -> None:
        self.cache = cache


def test_registering_an_optional_dependency_later_rebuilds_the_consumer() -> None:
    c = Container()
    c.register(User)
    assert c.resolve(User).cache is None
    c.register(Cache)
    assert isinstance(c.resolve(User).cache, Cache)


class Request:
    pass


class Loop:
    def __init__(self, other: Other) -> None:
        pass


class Other:
    def __init__(self, loop: Loop) -> None:
        pass


def test_validate_reports_every_problem_at_once() -> None:
    c = Container()
    c.register(Repo)  # needs Db: missing
    c.register(Request, lifetime="scoped")

    class Captor:
        def __init__(self, request: Request) -> None:
            pass

    c.register(Captor)
    c.register(Loop)
    c.register(Other)
    with pytest.raises(ValidationError) as info:
        c.validate()
    kinds = [type(p) for p in info.value.problems]
    assert kinds == [NotFoundError, CaptiveDependencyError, CycleError]
    text = str(info.value)
    assert text.startswith("the container is invalid (3 problem(s)):\n  - not found: Db (needed by Repo)")
    assert "captive dependency: singleton Captor would capture scoped Request" in text
    assert "dependency cycle: Loop -> Other -> Loop" in text


def test_validate_and_build_pass_on_a_good_graph_and_create_eager_singletons() -> None:
    made: list[str] = []
    c = app()

    def make() -> Db:
        made.append("db")
        return Db("x")

    c.register(Db, make, eager=True)
    c.validate()
    assert made == []
    c.build()
    assert made == ["db"]
    c.register(Repo, lifetime="scoped")
    c.register(Service)  # singleton capturing scoped Repo
    with pytest.raises(ValidationError):
        c.build()


def test_graph_nodes_edges_text_and_mermaid() -> None:
    c = app()

    class Plugin:
        pass

    class P1(Plugin):
        pass

    c.register_many(Plugin, P1, P1)
    graph = c.graph()
    assert [n.id for n in graph.nodes] == ["str", "Db", "Repo", "Service", "Plugin<P1>", "Plugin<P1>"]
    assert [(e.source, e.target, e.param) for e in graph.edges] == [
        ("Db", "str", "dsn"),
        ("Repo", "Db", "db"),
        ("Service", "Repo", "repo"),
    ]
    text = graph.to_text()
    assert "Service (singleton, Service) -> Repo" in text
    assert "str (singleton, instance)" in text
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("graph TD\n")
    assert "n2 -->|db| n1" in mermaid

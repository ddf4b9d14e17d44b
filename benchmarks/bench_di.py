"""Dependency injection: a singleton, a transient, a 3-level graph and a request scope, resolved by
buttress.di, dishka, dependency-injector, svcs, lagom and wireup, against hand-written factories."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any, Literal

from benchmarks._harness import TIMES, Contender, Op, Table, TableResult, compare


class Settings:
    """The app-wide singleton."""


class Db:
    """Transient, needs the singleton."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class Repo:
    """Transient, needs a transient."""

    def __init__(self, db: Db) -> None:
        self.db = db


class Service:
    """The root of the 3-level graph: Service -> Repo -> Db -> Settings, and Service -> Settings."""

    def __init__(self, repo: Repo, settings: Settings) -> None:
        self.repo = repo
        self.settings = settings


class Session:
    """Scoped: one per request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class Handler:
    """Scoped, needs the scoped session and the singleton."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings


KINDS = ("singleton", "transient", "graph", "scope")
Build = Callable[[str], Op]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# -- contenders: each returns the timed operation for one kind --------------------------------


def _hand(kind: str) -> Op:
    settings = Settings()
    instances = {Settings: settings}

    def make_db() -> Db:
        return Db(settings)

    def make_repo() -> Repo:
        return Repo(make_db())

    def make_service() -> Service:
        return Service(make_repo(), settings)

    def request() -> Handler:
        cache: dict[type, Any] = {}
        session = cache[Session] = Session(settings)
        handler = cache[Handler] = Handler(session, settings)
        cache.clear()
        return handler

    ops: dict[str, Op] = {
        "singleton": lambda: instances[Settings],
        "transient": make_db,
        "graph": make_service,
        "scope": request,
    }
    return ops[kind]


def _buttress(kind: str) -> Op:
    from buttress.di import Container

    c = Container()
    c.register(Settings)
    c.register(Db, lifetime="transient")
    c.register(Repo, lifetime="transient")
    c.register(Service, lifetime="transient")
    c.register(Session, lifetime="scoped")
    c.register(Handler, lifetime="scoped")
    c.validate()

    def request() -> Handler:
        with c.scope() as scope:
            return scope.resolve(Handler)

    ops: dict[str, Op] = {
        "singleton": lambda: c.resolve(Settings),
        "transient": lambda: c.resolve(Db),
        "graph": lambda: c.resolve(Service),
        "scope": request,
    }
    return ops[kind]


def _dishka(kind: str) -> Op:
    from dishka import Provider, make_container
    from dishka import Scope as DScope

    p = Provider(scope=DScope.APP)
    p.provide(Settings)
    for cls in (Db, Repo, Service):
        p.provide(cls, cache=False)
    p.provide(Session, scope=DScope.REQUEST)
    p.provide(Handler, scope=DScope.REQUEST)
    container = make_container(p)

    def request() -> Handler:
        with container() as req:
            return req.get(Handler)

    ops: dict[str, Op] = {
        "singleton": lambda: container.get(Settings),
        "transient": lambda: container.get(Db),
        "graph": lambda: container.get(Service),
        "scope": request,
    }
    return ops[kind]


def _dependency_injector(kind: str) -> Op:
    from dependency_injector import providers

    settings = providers.Singleton(Settings)
    db = providers.Factory(Db, settings=settings)
    repo = providers.Factory(Repo, db=db)
    service = providers.Factory(Service, repo=repo, settings=settings)
    ops: dict[str, Op] = {"singleton": settings, "transient": db, "graph": service}
    return ops[kind]


def _svcs(kind: str) -> Op:
    import svcs

    registry = svcs.Registry()
    registry.register_value(Settings, Settings())

    def make_session(svcs_container: svcs.Container) -> Session:
        return Session(svcs_container.get(Settings))

    def make_handler(svcs_container: svcs.Container) -> Handler:
        return Handler(svcs_container.get(Session), svcs_container.get(Settings))

    registry.register_factory(Session, make_session)
    registry.register_factory(Handler, make_handler)
    app = svcs.Container(registry)

    def request() -> Handler:
        with svcs.Container(registry) as c:
            return c.get(Handler)

    ops: dict[str, Op] = {"singleton": lambda: app.get(Settings), "scope": request}
    return ops[kind]


def _lagom(kind: str) -> Op:
    import lagom

    c = lagom.Container()
    c[Settings] = Settings()
    ops: dict[str, Op] = {
        "singleton": lambda: c[Settings],
        "transient": lambda: c[Db],
        "graph": lambda: c[Service],
    }
    return ops[kind]


def _wireup(kind: str) -> Op:
    import wireup

    classes = [Settings, Db, Repo, Service, Session, Handler]
    lifetimes: list[Literal["singleton", "transient", "scoped"]] = [
        "singleton", "transient", "transient", "transient", "scoped", "scoped"
    ]  # fmt: skip
    injectables = [wireup.injectable(lifetime=lt)(cls) for cls, lt in zip(classes, lifetimes, strict=True)]
    container = wireup.create_sync_container(injectables=injectables)
    # wireup resolves transients only inside a scope: one long-lived scope serves them
    long_lived = container.enter_scope().__enter__()

    def request() -> Handler:
        with container.enter_scope() as scoped:
            return scoped.get(Handler)

    ops: dict[str, Op] = {
        "singleton": lambda: container.get(Settings),
        "transient": lambda: long_lived.get(Db),
        "graph": lambda: long_lived.get(Service),
        "scope": request,
    }
    return ops[kind]


# -- semantics ---------------------------------------------------------------------------------


def _probe(kind: str) -> Callable[[Callable[[Callable[..., Any]], Callable[..., Any]]], None]:
    def probe(wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        op = wrap(_target)
        a, b = op(), op()
        if kind == "singleton":
            assert a is b, "a singleton must be the same instance every time"
        elif kind == "transient":
            assert a is not b and a.settings is b.settings, "a new Db each time, on the one Settings"
        elif kind == "graph":
            assert a is not b and a.repo is not b.repo and a.repo.db is not b.repo.db, "transients are new"
            assert a.settings is b.settings is a.repo.db.settings, "the Settings singleton is shared"
        else:
            assert a is not b and a.session is not b.session, "each request has its own scoped objects"
            assert a.settings is b.settings, "the singleton is shared across requests"

    return probe


def _target() -> None:
    """Unused: DI contenders build their operation themselves."""


def _verify(expected: type) -> Callable[[Any], None]:
    def verify(result: Any) -> None:
        assert isinstance(result, expected), f"expected a {expected.__name__}, got {result!r}"

    return verify


def _headline(result: TableResult) -> list[str]:
    ours, peers = result.find("buttress"), result.find("peer")
    if not ours or not peers:
        return ["buttress vs the fastest peer: n/a (a contender was not measured)"]
    fastest = min(peers, key=lambda r: r.best_ns)
    pure = min((r for r in peers if r.label != "dependency-injector"), key=lambda r: r.best_ns)
    bare = result.bare.best_ns
    return [
        compare("buttress", ours[0].best_ns, f"the fastest peer ({fastest.label})", fastest.best_ns),
        compare("buttress", ours[0].best_ns, f"the fastest pure-Python peer ({pure.label})", pure.best_ns),
        f"buttress / hand-written = {ours[0].best_ns / bare:.2f}{TIMES}; "
        f"{fastest.label} / hand-written = {fastest.best_ns / bare:.2f}{TIMES}",
    ]


PEERS: dict[str, tuple[Callable[[str], Op], str, str, tuple[str, ...]]] = {
    "dishka": (_dishka, "dishka", "`Provider`; transients `cache=False`; scope `Scope.REQUEST`", KINDS),
    "dependency-injector": (_dependency_injector, "dependency-injector",
                            "`providers.Singleton` / `providers.Factory` (Cython)",
                            ("singleton", "transient", "graph")),
    "svcs": (_svcs, "svcs", "`register_value` / `register_factory`; a `svcs.Container` per request",
             ("singleton", "scope")),
    "lagom": (_lagom, "lagom", "`Container`, instance for `Settings`, the rest auto-wired",
              ("singleton", "transient", "graph")),
    "wireup": (_wireup, "wireup",
               "`@injectable(lifetime=...)`, `create_sync_container`; transients from one open scope", KINDS),
}  # fmt: skip

SCOPE_NOTE = (
    "One operation opens a request scope, resolves a scoped `Handler` (needing a scoped `Session` "
    "and the singleton), and closes the scope. Baseline: the same by hand with a per-request dict. "
    "dependency-injector and lagom have no comparable request scope and are left out; svcs has no "
    "transients, so it appears only here and for the singleton."
)
GRAPH_NOTE = (
    "One operation builds `Service(Repo(Db(settings)), settings)`: three transients over one "
    "singleton. Baseline: three hand-written factory functions calling each other."
)
TITLES: dict[str, tuple[str, str, str, type]] = {
    "singleton": (
        "6. DI: resolve a singleton",
        "One operation resolves an already-created app-wide singleton. "
        "Baseline: a dict lookup `instances[Settings]`.",
        "dict lookup",
        Settings,
    ),
    "transient": (
        "7. DI: resolve a transient",
        "One operation creates a `Db(settings)` whose `Settings` is a singleton. "
        "Baseline: a hand-written factory `make_db()`.",
        "hand-written factory",
        Db,
    ),
    "graph": ("8. DI: resolve a 3-level graph", GRAPH_NOTE, "hand-written factories", Service),
    "scope": ("9. DI: a request scope", SCOPE_NOTE, "hand-written request", Handler),
}


def _wrap(build: Callable[[str], Op], kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return lambda fn: build(kind)


def tables() -> list[Table]:
    """The four DI tables."""
    result = []
    for kind in KINDS:
        title, description, bare_label, expected = TITLES[kind]
        contenders = [
            Contender("buttress.di", "`Container`, compiled resolvers", "buttress", _wrap(_buttress, kind),
                      "buttress", _probe(kind)),
        ]  # fmt: skip
        for label, (build, dist, config, kinds) in PEERS.items():
            if kind in kinds:
                contenders.append(
                    Contender(label, f"{config} ({dist} {_version(dist)})", "peer", _wrap(build, kind), dist,
                              _probe(kind))
                )  # fmt: skip
        result.append(
            Table(
                key=f"di-{kind}",
                group="di",
                title=title,
                description=description,
                mode="sync",
                target=_target,
                make_op=lambda guarded: guarded,
                bare=_hand(kind),
                bare_label=bare_label,
                verify=_verify(expected),
                contenders=tuple(contenders),
                headline=_headline,
            )
        )
    return result

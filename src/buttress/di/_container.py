"""The container: registration, resolution through compiled resolvers, overrides and lifecycle."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, get_origin

from buttress._validation import Problems
from buttress.di import _lifecycle
from buttress.di._compile import Compiler
from buttress.di._errors import FinalizerError, StartError
from buttress.di._graph import Graph, build_graph, validate
from buttress.di._keys import Key, is_type_like, make_key, parse_annotation, provided_type
from buttress.di._registry import LIFETIMES, MISSING, Hook, Lifetime, Registration, Registry
from buttress.di._scope import Finalizer, Scope, arun_finalizers, run_finalizers
from buttress.errors import ButtressError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _Resolvers(dict[Any, Callable[..., Any]]):
    """Compiled resolvers by key; a missing key is compiled on first use (``__missing__``)."""

    __slots__ = ("_compile",)

    def __init__(self, compile_key: Callable[[Key, Callable[[], Any]], Callable[..., Any]]) -> None:
        super().__init__()
        self._compile = compile_key

    def __missing__(self, key: Key) -> Callable[..., Any]:
        fn = self._compile(key, functools.partial(self.pop, key, None))
        self[key] = fn
        return fn


def _normalize(key: Key) -> Key:
    """``Annotated[Db, Named("x")]`` as a resolve key means ``(Db, "x")``."""
    if isinstance(key, tuple) or get_origin(key) is None:
        return key
    tp, name, _, _ = parse_annotation(key)
    return make_key(tp, name)


class Override:
    """A registration replaced for a while (tests); restores the original on exit or ``restore()``."""

    __slots__ = ("_container", "_key", "_old", "_restored")

    def __init__(self, container: Container, key: Key, old: list[Registration] | None) -> None:
        self._container = container
        self._key = key
        self._old = old
        self._restored = False

    def restore(self) -> None:
        """Put the original registrations back (idempotent) and invalidate what depended on them."""
        if self._restored:
            return
        self._restored = True
        by_key = self._container._registry.by_key
        if self._old is None:
            by_key.pop(self._key, None)
        else:
            by_key[self._key] = self._old
        self._container._invalidate(self._key)

    def __enter__(self) -> Override:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


class Container:
    """A dependency-injection container that compiles each root's graph into one function.

    Register providers by type (and optional name), then resolve. Each root (a key resolved from
    the container or a scope, sync or async) is compiled on first use into a generated function
    that builds the whole graph with one Python call; a cached singleton costs one dict lookup,
    one call and one attribute load. Any registration change or override invalidates the compiled
    resolvers (and the singletons that depended on what changed).

    Example:
        >>> from buttress.di import Container
        >>> class Db: ...
        >>> class Repo:
        ...     def __init__(self, db: Db) -> None:
        ...         self.db = db
        >>> c = Container()
        >>> c.register(Db)
        >>> c.register(Repo, lifetime="transient")
        >>> c.resolve(Repo).db is c.resolve(Db)
        True
    """

    def __init__(self) -> None:
        self._registry = Registry()
        self._finalizers: list[Finalizer] = []
        self._compiler = Compiler(self, Container, Scope)
        self._sync = _Resolvers(lambda k, d: self._root(k, d, False, False, False))
        self._async = _Resolvers(lambda k, d: self._root(k, d, True, False, False))
        self._sync_all = _Resolvers(lambda k, d: self._root(k, d, False, False, True))
        self._async_all = _Resolvers(lambda k, d: self._root(k, d, True, False, True))
        self._scope_sync = _Resolvers(lambda k, d: self._root(k, d, False, True, False))
        self._scope_async = _Resolvers(lambda k, d: self._root(k, d, True, True, False))
        self._scope_sync_all = _Resolvers(lambda k, d: self._root(k, d, False, True, True))
        self._scope_async_all = _Resolvers(lambda k, d: self._root(k, d, True, True, True))
        self._tables = (self._sync, self._async, self._sync_all, self._async_all, self._scope_sync,
                        self._scope_async, self._scope_sync_all, self._scope_async_all)  # fmt: skip
        self._started: list[_lifecycle.Service] = []

    # -- registration ---------------------------------------------------------------------

    def register(
        self,
        key: Any,
        provider: Callable[..., Any] | None = None,
        /,
        *,
        instance: Any = MISSING,
        name: str | None = None,
        lifetime: Lifetime = "singleton",
        eager: bool = False,
        group: bool = False,
        on_start: Hook | None = None,
        on_stop: Hook | None = None,
    ) -> None:
        """Register how to provide ``key``.

        ``register(Db)`` uses the class itself (its ``__init__`` hints); ``register(Db, make_db)``
        a provider function (its parameters are resolved from their hints; a generator or async
        generator's code after ``yield`` is the finalizer); ``register(Db, instance=db)`` a ready
        instance; ``register(make_db)`` infers the key from the return hint. Registering a key
        again replaces it, unless ``group=True`` adds another member of the key's group.

        Args:
            key: the type (``Annotated[Db, Named("x")]`` names it too), or a provider function.
            provider: a class or function that builds the instance.
            instance: a ready instance (a singleton).
            name: the registration's name; consumers ask for it with ``Annotated[Db, Named(name)]``.
            lifetime: ``"singleton"`` (one per container, created lazily), ``"transient"`` (one
                per resolve) or ``"scoped"`` (one per :meth:`scope`).
            eager: create the singleton at :meth:`build` / :meth:`start` instead of lazily.
            group: add to the key's group instead of replacing (see :meth:`resolve_all`).
            on_start: a hook called with the instance at :meth:`start` (sync or async).
            on_stop: a hook called with the instance at :meth:`stop` (sync or async).

        Raises:
            ConfigurationError: a bad lifetime, ``eager`` or ``instance`` with a non-singleton, or
                both ``provider`` and ``instance``.
            RegistrationError: the key cannot be inferred from a provider without a return hint.
        """
        if provider is None and instance is MISSING and not is_type_like(key) and callable(key):
            provider, key = key, provided_type(key)
        tp, annotated_name, _, _ = parse_annotation(key)
        full_key = make_key(tp, name if name is not None else annotated_name)
        problems = Problems("registration")
        if lifetime not in LIFETIMES:
            problems.add(f"lifetime must be one of {', '.join(LIFETIMES)} (got {lifetime!r})")
        if eager and lifetime != "singleton":
            problems.add(f"eager=True needs lifetime='singleton' (got {lifetime!r})")
        if instance is not MISSING and provider is not None:
            problems.add("pass either a provider or instance=, not both")
        if instance is not MISSING and lifetime != "singleton":
            problems.add(f"an instance is a singleton (got lifetime={lifetime!r})")
        if provider is None and instance is MISSING and not callable(tp):
            problems.add(f"{tp!r} is not a class: pass a provider or instance=")
        problems.raise_if_any()
        if provider is None and instance is MISSING:
            provider = tp
        reg = Registration(full_key, provider, instance=instance, lifetime=lifetime, eager=eager,
                           on_start=on_start, on_stop=on_stop)  # fmt: skip
        self._registry.add(reg, group=group)
        self._invalidate(full_key)

    def register_many(
        self, key: Any, *providers: Callable[..., Any], lifetime: Lifetime = "singleton"
    ) -> None:
        """Add each provider to the group of ``key``, in order (``register(key, p, group=True)``)."""
        for provider in providers:
            self.register(key, provider, lifetime=lifetime, group=True)

    def provide(self, fn: F, /) -> F:
        """A decorator: register ``fn`` as the singleton provider of its return type; returns ``fn``."""
        self.register(fn)
        return fn

    def override(
        self,
        key: Any,
        provider: Callable[..., Any] | None = None,
        /,
        *,
        instance: Any = MISSING,
        name: str | None = None,
        lifetime: Lifetime = "singleton",
    ) -> Override:
        """Replace ``key``'s registrations now; the returned :class:`Override` restores them.

        Works after resolves too: compiled resolvers are rebuilt and cached singletons that
        depended on ``key`` (directly or not) are forgotten, both now and again on restore, so
        nothing keeps the overridden instance.

        Example:
            >>> from buttress.di import Container
            >>> c = Container()
            >>> c.register(str, instance="real")
            >>> with c.override(str, instance="fake"):
            ...     assert c.resolve(str) == "fake"
            >>> c.resolve(str)
            'real'
        """
        tp, annotated_name, _, _ = parse_annotation(key)
        full_key = make_key(tp, name if name is not None else annotated_name)
        old = self._registry.by_key.get(full_key)
        key_name = name if name is not None else annotated_name
        self.register(tp, provider, instance=instance, name=key_name, lifetime=lifetime)
        return Override(self, full_key, old)

    def _invalidate(self, key: Key) -> None:
        reverse: dict[Key, list[Registration]] = {}
        for reg in self._registry.all():
            try:
                deps = reg.deps
            except ButtressError:
                continue
            for d in deps:
                reverse.setdefault(d.key, []).append(reg)
                reverse.setdefault(make_key(d.annotation, d.name), []).append(reg)
        todo, seen = [key], set()
        while todo:
            for reg in reverse.get(todo.pop(), []):
                if reg not in seen:
                    seen.add(reg)
                    reg.reset()
                    todo.append(reg.key)
        # resolvers compiled earlier hold created singletons as constants
        self._compiler.clear()
        for table in self._tables:
            table.clear()

    def _root(
        self, key: Key, drop: Callable[[], Any], is_async: bool, in_scope: bool, many: bool
    ) -> Callable[..., Any]:
        real = _normalize(key)
        regs = self._registry.get(real)
        compile_root = self._compiler.root_all if many else self._compiler.root
        return compile_root(real, regs, is_async=is_async, in_scope=in_scope, drop=drop)

    # -- resolution ------------------------------------------------------------------------

    def resolve(self, tp: type[T], /, name: str | None = None) -> T:
        """The instance of ``tp`` (named ``name``), built with its whole dependency graph.

        Raises:
            NotFoundError, AmbiguousError, CycleError, ScopeError, CaptiveDependencyError,
            AsyncProviderError: the graph cannot give one ``tp`` here; the message names the chain.
        """
        if name is None:
            return self._sync[tp]()  # type: ignore[no-any-return]
        return self._sync[(tp, name)]()  # type: ignore[no-any-return]

    async def aresolve(self, tp: type[T], /, name: str | None = None) -> T:
        """Like :meth:`resolve`, awaiting async providers and async singleton creation."""
        return await self._async[tp if name is None else (tp, name)]()  # type: ignore[no-any-return]

    def resolve_all(self, tp: type[T], /, name: str | None = None) -> list[T]:
        """Every registration of ``tp`` (its group), in registration order; ``[]`` when none."""
        return self._sync_all[make_key(tp, name)]()  # type: ignore[no-any-return]

    async def aresolve_all(self, tp: type[T], /, name: str | None = None) -> list[T]:
        """The async twin of :meth:`resolve_all`."""
        return await self._async_all[make_key(tp, name)]()  # type: ignore[no-any-return]

    def scope(self) -> Scope:
        """A new scope, used as ``with container.scope() as scope: scope.resolve(T)``."""
        return Scope(self)

    def ascope(self) -> Scope:
        """A new scope for ``async with container.ascope() as scope: await scope.aresolve(T)``."""
        return Scope(self)

    def validate(self) -> None:
        """Check the whole graph now: every dependency resolvable, no cycle, no captive dependency.

        Raises:
            ValidationError: listing every problem found (each a :class:`ResolutionError` or
                :class:`RegistrationError` with its chain).
        """
        validate(self._registry, self._compiler)

    def graph(self) -> Graph:
        """The dependency graph (nodes and edges); ``.to_text()`` and ``.to_mermaid()`` render it."""
        return build_graph(self._registry)

    def build(self) -> None:
        """Validate, then create the eager singletons (the async ones need :meth:`start`)."""
        self.validate()
        for reg in self._registry.all():
            if reg.eager:
                self._sync[reg.key]() if len(self._registry.get(reg.key)) == 1 else self._sync_all[reg.key]()

    # -- lifecycle -------------------------------------------------------------------------

    def started_services(self) -> list[str]:
        """The names of the services started (and not yet stopped), in start order."""
        return [s.name for s in self._started]

    def _create_all(self, create: Callable[[Registration], Any]) -> None:
        for reg in _lifecycle.candidates(self._registry):
            try:
                create(reg)
            except Exception as exc:
                raise StartError(reg.name, exc, _lifecycle.StopResult()) from exc

    async def start(self) -> None:
        """Create the eager singletons and services, then start them layer by layer.

        A layer's hooks run in parallel (``asyncio.gather``). If one fails, the services already
        started are stopped again, newest layer first, and :class:`StartError` names the failure.

        Raises:
            StartError: a service could not be created or started.
        """
        for reg in _lifecycle.candidates(self._registry):
            try:
                await self._acreate(reg)
            except Exception as exc:
                raise StartError(reg.name, exc, _lifecycle.StopResult()) from exc
        for layer in _lifecycle.by_layer(self._pending_services()):
            hooks = [_lifecycle.call_async(s.start) for s in layer if s.start is not None]
            results = await asyncio.gather(*hooks, return_exceptions=True)
            starters = iter(results)
            failure: tuple[str, BaseException] | None = None
            for service in layer:
                outcome = next(starters) if service.start is not None else None
                if isinstance(outcome, BaseException):
                    failure = failure or (service.name, outcome)
                else:
                    self._started.append(service)
            if failure is not None:
                rollback = await self.stop()
                raise StartError(failure[0], failure[1], rollback) from failure[1]

    def start_sync(self) -> None:
        """The sync twin of :meth:`start` for thread-based apps: one service at a time, in order."""
        self._create_all(lambda reg: self._sync[reg.key]() if len(self._registry.get(reg.key)) == 1
                         else self._sync_all[reg.key]())  # fmt: skip
        for service in self._pending_services():
            try:
                if service.start is not None:
                    _lifecycle.call_sync(service.start)
            except Exception as exc:
                rollback = self.stop_sync()
                raise StartError(service.name, exc, rollback) from exc
            self._started.append(service)

    async def _acreate(self, reg: Registration) -> None:
        if len(self._registry.get(reg.key)) == 1:
            await self._async[reg.key]()
        else:
            await self._async_all[reg.key]()

    def _pending_services(self) -> list[_lifecycle.Service]:
        started = {s.reg for s in self._started}
        return [s for s in _lifecycle.services(self._registry) if s.reg not in started]

    async def stop(self, hook_timeout: float = 10.0) -> _lifecycle.StopResult:
        """Stop the started services in reverse layers (parallel within one), each within ``hook_timeout`` s.

        A hook that overruns is abandoned and named in ``timed_out``; one that raises is in
        ``failed``; the others still run. Sync hooks run in a daemon thread so they can be timed out.
        """
        started, self._started = self._started, []
        return await _lifecycle.stop_async(started, hook_timeout)

    def stop_sync(self, hook_timeout: float = 10.0) -> _lifecycle.StopResult:
        """The sync twin of :meth:`stop`: newest first, one at a time, each within ``hook_timeout`` s."""
        started, self._started = self._started, []
        return _lifecycle.stop_sync(started, hook_timeout)

    def close(self) -> None:
        """Run the container's finalizers, newest first, and forget every singleton.

        Raises:
            FinalizerError: one or more finalizers raised (all of them still ran).
        """
        errors = run_finalizers(self._finalizers)
        self._forget()
        if errors:
            raise FinalizerError(errors)

    async def aclose(self) -> None:
        """Like :meth:`close`, also running async finalizers."""
        errors = await arun_finalizers(self._finalizers)
        self._forget()
        if errors:
            raise FinalizerError(errors)

    def _forget(self) -> None:
        for reg in self._registry.all():
            reg.reset()
        self._compiler.clear()
        for table in self._tables:
            table.clear()

    def __enter__(self) -> Container:
        self.start_sync()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_sync()
        self.close()

    async def __aenter__(self) -> Container:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        await self.aclose()

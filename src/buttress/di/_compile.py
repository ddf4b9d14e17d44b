"""Compiling a root's dependency graph into one generated Python function.

For every root (a key resolved from the container or from a scope, sync or async) the graph is
walked once and written out as straight-line source: transient dependencies become nested calls
of their providers, singletons become one attribute load of their cached value (plus a call of
the once-only creator when it is missing), scoped ones one dict lookup in the scope's cache.
Resolving a three-level graph is then one Python call plus the providers' own calls. Every
error that the graph itself makes certain (not found, ambiguous, a cycle, a captive or an async
dependency) is raised here, while compiling, with the whole chain of consumers.
"""

from __future__ import annotations

import functools
import itertools
import linecache
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from buttress.di._errors import (
    AmbiguousError,
    AsyncProviderError,
    CaptiveDependencyError,
    CycleError,
    NotFoundError,
    ResolutionError,
    ScopeError,
)
from buttress.di._keys import Dependency, Key, key_name
from buttress.di._registry import MISSING, Registration
from buttress.di._singleton import create_async, create_sync

if TYPE_CHECKING:
    from buttress.di._container import Container

_NOTE_PREFIX = "while resolving "
_serial = itertools.count()


def _annotate(exc: BaseException, notes: list[str], index: int) -> None:
    """Add one note naming the provider that raised, unless an inner resolver already did."""
    if index < 0 or isinstance(exc, ResolutionError):
        return
    if any(n.startswith(_NOTE_PREFIX) for n in getattr(exc, "__notes__", ())):
        return
    exc.add_note(notes[index])


def _raiser(error: ResolutionError) -> Callable[[], Any]:
    def raise_error() -> Any:
        raise error

    return raise_error


class _Gen:
    """The source of one generated function, and the constants it refers to."""

    def __init__(self, compiler: Compiler, *, is_async: bool, in_scope: bool, captor: int | None) -> None:
        self.compiler = compiler
        self.is_async = is_async
        self.in_scope = in_scope
        self.captor = captor  # index in the chain of the singleton being built, if any
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {"_M": MISSING}
        self.ids: dict[int, str] = {}
        self.notes: list[str] = []
        self.count = 0
        self.awaits = False
        self.uses_cache = False
        self.uses_fin = False
        self.indent = 1
        self.memo: dict[Registration, tuple[str, int]] = {}
        self.drop: Callable[[], Any] | None = None  # forget this root once a singleton was created

    def const(self, obj: Any, prefix: str) -> str:
        name = self.ids.get(id(obj))
        if name is None:
            name = self.ids[id(obj)] = f"{prefix}{len(self.ids)}"
            self.consts[name] = obj
        return name

    def var(self) -> str:
        self.count += 1
        return f"_v{self.count}"

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def finalizers(self) -> str:
        if self.in_scope and self.captor is None:
            self.uses_fin = True
            return "_fin"
        return self.const(self.compiler.container._finalizers, "_cfin")

    # -- the graph ----------------------------------------------------------------------

    def node(self, reg: Registration, chain: tuple[str, ...], stack: tuple[Registration, ...]) -> str:
        if reg in stack:
            raise CycleError([r.name for r in stack[stack.index(reg) :]] + [reg.name])
        if reg.kind == "instance":
            return self.const(reg.value, "_i")
        memo = self.memo.get(reg)
        if memo is not None and memo[1] <= self.indent:
            return memo[0]
        if reg.lifetime == "singleton":
            value = reg.value
            if value is not MISSING:
                # created already: until the next invalidation it is a constant of this resolver
                return self.const(value, "_i")
            creator, is_async = self.compiler.creator(reg, self.is_async, chain, stack)
            v, r, c = self.var(), self.const(reg, "_r"), self.const(creator, "_c")
            self.line(f"{v} = {r}.value")
            self.line(f"if {v} is _M:")
            self.line(f"    {v} = {'await ' if is_async else ''}{c}()")
            if self.drop is not None:
                self.line(f"    {self.const(self.drop, '_d')}()")
            self.awaits |= is_async
            self.memo[reg] = (v, self.indent)
            return v
        if reg.lifetime == "scoped":
            if self.captor is not None:
                raise CaptiveDependencyError(reg.name, chain[self.captor :])
            if not self.in_scope:
                raise ScopeError(reg.name, chain)
            self.uses_cache = True
            v, k = self.var(), self.const(reg, "_k")
            self.line(f"{v} = _cache.get({k}, _M)")
            self.line(f"if {v} is _M:")
            self.indent += 1
            self.construct(reg, chain, stack, v)
            self.line(f"_cache[{k}] = {v}")
            self.indent -= 1
            self.memo = {r: m for r, m in self.memo.items() if m[1] <= self.indent}
            self.memo[reg] = (v, self.indent)
            return v
        v = self.var()
        self.construct(reg, chain, stack, v)
        return v

    def dependency(
        self, dep: Dependency, chain: tuple[str, ...], stack: tuple[Registration, ...]
    ) -> str | None:
        """The expression of one argument, or ``None`` to let the parameter take its default."""
        container = self.compiler.container
        wanted: object = dep.key
        if wanted is self.compiler.container_type or wanted is type(container):
            return self.const(container, "_ct")
        if wanted is self.compiler.scope_type:
            if self.in_scope and self.captor is None:
                return "_sc"
            raise ScopeError(key_name(dep.key), chain)
        many, regs = container._registry.lookup(dep)
        if not regs:
            if dep.optional:
                return "None"
            if dep.has_default:
                return None
            if many:
                return "[]"
            raise NotFoundError(key_name(dep.key), chain)
        if many:
            return "[" + ", ".join(self.node(r, chain, stack) for r in regs) + "]"
        if len(regs) > 1:
            raise AmbiguousError(key_name(regs[0].key), [r.label for r in regs], chain)
        return self.node(regs[0], chain, stack)

    def construct(
        self, reg: Registration, chain: tuple[str, ...], stack: tuple[Registration, ...], v: str
    ) -> None:
        inner, inner_stack = (*chain, reg.name), (*stack, reg)
        args: list[str] = []
        by_keyword = False
        for dep in reg.deps:
            expr = self.dependency(dep, inner, inner_stack)
            if expr is None:
                by_keyword = True
            elif dep.keyword or by_keyword:
                args.append(f"{dep.param}={expr}")
            else:
                args.append(expr)
        call = f"{self.const(reg.provider, '_p')}({', '.join(args)})"
        needed = f" (needed by {' <- '.join(reversed(chain))})" if chain else ""
        self.notes.append(f"{_NOTE_PREFIX}{reg.name} with {reg.label}{needed}")
        self.line(f"_n = {len(self.notes) - 1}")
        if reg.is_async and not self.is_async:
            raise AsyncProviderError(reg.name, chain)
        if reg.kind in ("class", "function"):
            self.line(f"{v} = {call}")
        elif reg.kind == "coroutine":
            self.awaits = True
            self.line(f"{v} = await {call}")
        else:
            g, fin, label = self.var(), self.finalizers(), self.const(reg.name, "_s")
            self.line(f"{g} = {call}")
            if reg.kind == "generator":
                self.line(f"{v} = next({g})")
            else:
                self.awaits = True
                self.line(f"{v} = await {g}.__anext__()")
            self.line(f"{fin}.append(({g}, {label}))")

    def function(self, name: str, result: str) -> Callable[..., Any]:
        if not self.lines and not self.is_async and not self.in_scope and result in self.consts:
            # a created singleton or an instance: a C-level call returns it, no Python frame
            return itertools.repeat(self.consts[result]).__next__
        prologue = []
        if self.uses_cache:
            prologue.append("    _cache = _sc.cache")
        if self.uses_fin:
            prologue.append("    _fin = _sc.finalizers")
        head = f"{'async ' if self.is_async else ''}def {name}({'_sc' if self.in_scope else ''}):"
        body = [*self.lines, f"    return {result}"]
        if self.notes:
            self.consts["_annotate"] = _annotate
            self.consts["_notes"] = self.notes
            body = [
                "    _n = -1",
                "    try:",
                *("    " + ln for ln in body),
                "    except BaseException as _e:",
                "        _annotate(_e, _notes, _n)",
                "        raise",
            ]
        source = "\n".join([head, *prologue, *body]) + "\n"
        filename = f"<buttress.di {name} #{next(_serial)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = dict(self.consts)
        exec(compile(source, filename, "exec"), namespace)
        fn: Callable[..., Any] = namespace[name]
        fn.__buttress_source__ = source  # type: ignore[attr-defined]
        return fn


class Compiler:
    """Compiles resolvers for one container and memoizes singleton creators until invalidated."""

    def __init__(self, container: Container, container_type: type, scope_type: type) -> None:
        self.container = container
        self.container_type = container_type
        self.scope_type = scope_type
        self.creators: dict[tuple[Registration, bool], tuple[Callable[[], Any], bool]] = {}

    def clear(self) -> None:
        """Forget every memoized creator (the registrations changed)."""
        self.creators.clear()

    def creator(
        self, reg: Registration, is_async: bool, chain: tuple[str, ...], stack: tuple[Registration, ...]
    ) -> tuple[Callable[[], Any], bool]:
        """The once-only creator of singleton ``reg``, and whether it must be awaited."""
        found = self.creators.get((reg, is_async))
        if found is not None:
            return found
        gen = _Gen(self, is_async=is_async, in_scope=False, captor=len(chain))
        v = gen.var()
        try:
            gen.construct(reg, chain, stack, v)
        except AsyncProviderError as exc:
            if reg.value is MISSING:
                raise
            # an async singleton already created (e.g. at start) stays resolvable synchronously
            found = (_raiser(exc), False)
            self.creators[(reg, is_async)] = found
            return found
        gen.is_async = gen.awaits
        build = gen.function(f"build_{_ident(reg.name)}", v)
        if gen.awaits:
            found = (functools.partial(create_async, reg, build), True)
        else:
            found = (functools.partial(create_sync, reg, build), False)
        self.creators[(reg, is_async)] = found
        return found

    def root(
        self,
        key: Key,
        regs: list[Registration],
        *,
        is_async: bool,
        in_scope: bool,
        drop: Callable[[], Any] | None = None,
    ) -> Callable[..., Any]:
        """The resolver of one instance of ``key``; ``drop`` forgets it once a singleton was created."""
        name = key_name(key)
        if not regs:
            raise NotFoundError(name)
        if len(regs) > 1:
            raise AmbiguousError(name, [r.label for r in regs])
        gen = _Gen(self, is_async=is_async, in_scope=in_scope, captor=None)
        gen.drop = drop
        result = gen.node(regs[0], (), ())
        return gen.function(f"resolve_{_ident(name)}", result)

    def root_all(
        self,
        key: Key,
        regs: list[Registration],
        *,
        is_async: bool,
        in_scope: bool,
        drop: Callable[[], Any] | None = None,
    ) -> Callable[..., Any]:
        """The resolver of every registration of ``key``, as a list in registration order."""
        gen = _Gen(self, is_async=is_async, in_scope=in_scope, captor=None)
        gen.drop = drop
        items = [gen.node(r, (), ()) for r in regs]
        return gen.function(f"resolve_all_{_ident(key_name(key))}", "[" + ", ".join(items) + "]")


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)

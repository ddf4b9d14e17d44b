"""Registrations (one provider for one key, with a lifetime) and the registry that holds them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, Literal

from buttress.di._keys import (
    Dependency,
    Key,
    ProviderKind,
    callable_name,
    dependencies,
    key_name,
    make_key,
    provider_kind,
)

Lifetime = Literal["singleton", "transient", "scoped"]
"""How long a resolved instance lives: the container, one resolve, or one scope."""
LIFETIMES: Final = ("singleton", "transient", "scoped")
Hook = Callable[[Any], Any]
"""A start or stop hook: called with the instance; may be a coroutine function."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""The value of a singleton that was not created yet."""


class Registration:
    """One provider registered for one key.

    A singleton's cached instance lives here too (``value``), so the compiled resolvers read it
    with one attribute load; ``lock`` guards only the bookkeeping of creation (``pending``),
    never the provider call itself.
    """

    __slots__ = (
        "_deps",
        "eager",
        "generation",
        "index",
        "key",
        "kind",
        "label",
        "lifetime",
        "lock",
        "name",
        "on_start",
        "on_stop",
        "owner",
        "pending",
        "provider",
        "value",
    )

    def __init__(
        self,
        key: Key,
        provider: Callable[..., Any] | None,
        *,
        instance: Any = MISSING,
        lifetime: Lifetime = "singleton",
        eager: bool = False,
        on_start: Hook | None = None,
        on_stop: Hook | None = None,
        index: int = 0,
    ) -> None:
        self.key = key
        self.name = key_name(key)
        self.provider = provider
        self.kind: ProviderKind = "instance" if provider is None else provider_kind(provider)
        self.label = "instance" if provider is None else callable_name(provider)
        self.lifetime: Lifetime = lifetime
        self.eager = eager
        self.on_start = on_start
        self.on_stop = on_stop
        self.index = index
        self.value: Any = instance
        self.lock = threading.Lock()
        self.pending: Future[Any] | None = None
        self.owner = 0
        self.generation = 0
        self._deps: tuple[Dependency, ...] | None = None

    @property
    def deps(self) -> tuple[Dependency, ...]:
        """The provider's injectable parameters, read once from its hints."""
        if self._deps is None:
            self._deps = () if self.provider is None else dependencies(self.provider)
        return self._deps

    @property
    def is_async(self) -> bool:
        """The provider is a coroutine function or an async generator function."""
        return self.kind in ("coroutine", "asyncgen")

    def reset(self) -> None:
        """Forget a cached singleton (an instance registration keeps its instance)."""
        if self.kind == "instance":
            return
        with self.lock:
            self.value = MISSING
            self.generation += 1

    def __repr__(self) -> str:
        return f"<Registration {self.name} <- {self.label} ({self.lifetime})>"


class Registry:
    """Every registration, by key, in registration order."""

    __slots__ = ("by_key", "counter")

    def __init__(self) -> None:
        self.by_key: dict[Key, list[Registration]] = {}
        self.counter = 0

    def add(self, registration: Registration, *, group: bool) -> list[Registration]:
        """Add ``registration``; without ``group`` it replaces what the key had. Returns the old list."""
        old = self.by_key.get(registration.key, [])
        self.counter += 1
        registration.index = self.counter
        self.by_key[registration.key] = [*old, registration] if group else [registration]
        return old

    def get(self, key: Key) -> list[Registration]:
        """The registrations of ``key`` (empty when none)."""
        return self.by_key.get(key, [])

    def all(self) -> list[Registration]:
        """Every registration, in registration order."""
        return sorted((r for regs in self.by_key.values() for r in regs), key=lambda r: r.index)

    def lookup(self, dep: Dependency) -> tuple[bool, list[Registration]]:
        """``(many, registrations)`` for a dependency; a registered ``list[T]`` key wins over the group."""
        if dep.many:
            exact = self.by_key.get(make_key(dep.annotation, dep.name))
            if exact:
                return False, exact
            return True, self.by_key.get(dep.key, [])
        return False, self.by_key.get(dep.key, [])

"""The composition model shared by every policy.

A policy implements two *chain builders*: given the next link of a chain, return a link that
wraps it. A link is ``link(fn, args, kwargs) -> result`` (sync) or a coroutine function with
the same signature (async). ``call``/``acall``, the decorator and :class:`Pipeline` are all
built from these links once, at construction, so a call walks a fixed chain of closures.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

from buttress.events import EventPublisher

P = ParamSpec("P")
R = TypeVar("R")

SyncLink = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]
AsyncLink = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Coroutine[Any, Any, Any]]


def invoke_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The innermost sync link: call the user's function."""
    return fn(*args, **kwargs)


async def invoke_async(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The innermost async link: await the user's coroutine function."""
    return await fn(*args, **kwargs)


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions, methods, partials of them and async ``__call__``."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    return inspect.iscoroutinefunction(call)


def refuse_generators(policy: str, fn: object) -> None:
    """Wrapping a generator function would only guard its creation, never its iteration."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        name = getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"{policy} cannot wrap the generator function {name}: the policy would only see the "
            "creation of the generator, not its iteration; wrap a function that consumes it instead"
        )


class Policy:
    """Base class of every resilience policy.

    Subclasses implement :meth:`_chain_sync` and :meth:`_chain_async` and call
    :meth:`_compose` at the end of ``__init__``. They may override :meth:`_decorate_sync` /
    :meth:`_decorate_async` with a specialised closure for a faster decorator path.

    A policy is used in four ways: as a decorator (``@policy``), ``policy.call(fn, *args)``,
    ``await policy.acall(fn, *args)`` and, where it has a meaning, ``with policy.guard():``.
    """

    __slots__ = ("_async_chain", "_sync_chain", "events", "name")

    name: str
    """The name given at construction, used in errors, events and the registry."""
    events: EventPublisher
    """Listeners of this policy's events; see :mod:`buttress.events`."""

    def __init__(self, name: str | None) -> None:
        self.name = name or ""
        self.events = EventPublisher()

    # -- to implement -------------------------------------------------------------------
    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        raise NotImplementedError

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        raise NotImplementedError

    def _requires_async(self) -> bool:
        """True for policies that only make sense around coroutines (timeouts)."""
        return False

    # -- provided -----------------------------------------------------------------------
    def _compose(self) -> None:
        self._sync_chain = self._chain_sync(invoke_sync)
        self._async_chain = self._chain_async(invoke_async)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` under this policy and return its result."""
        return cast(R, self._sync_chain(fn, args, kwargs))

    def acall(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        """Await ``fn(*args, **kwargs)`` under this policy; use as ``await policy.acall(...)``."""
        return cast(Coroutine[Any, Any, R], self._async_chain(fn, args, kwargs))

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or ``async def``); the wrapper keeps its signature."""
        refuse_generators(type(self).__name__, fn)
        if is_async_callable(fn):
            wrapper = self._decorate_async(fn)
        elif self._requires_async():
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(
                f"{self!r} can only wrap coroutine functions, and {name} is a sync function "
                "(a Timeout can interrupt only an await)"
            )
        else:
            wrapper = self._decorate_sync(fn)
        return cast(Callable[P, R], functools.wraps(fn)(wrapper))

    def _decorate_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        chain = self._sync_chain

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return chain(fn, args, kwargs)

        return wrapper

    def _decorate_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        chain = self._async_chain

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await chain(fn, args, kwargs)

        return wrapper

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

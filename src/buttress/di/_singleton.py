"""Once-only creation of singletons, under threads and asyncio tasks alike.

The compiled resolvers read ``registration.value`` without a lock (the fast path). Only when it
is still missing do they call one of the creators here, which take the registration's lock just
long enough to elect one creator (the *owner*) and publish a :class:`concurrent.futures.Future`
that every other thread or task waits on; the provider itself runs outside the lock. A failure
is handed to the waiters and never cached, so the next resolve tries again.

A context variable holds the singletons being created by the current thread or task, so that a
provider which (directly or not) resolves its own singleton again gets a :class:`CycleError`
instead of waiting for itself forever; the variable is reset in ``finally``, also when the
provider raises.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any

from buttress.di._errors import CycleError, ResolutionError
from buttress.di._registry import MISSING, Registration

_creating: ContextVar[tuple[Registration, ...]] = ContextVar("buttress_di_creating", default=())


def _check_cycle(reg: Registration) -> tuple[Registration, ...]:
    stack = _creating.get()
    if reg in stack:
        start = stack.index(reg)
        raise CycleError([r.name for r in stack[start:]] + [reg.name])
    return stack


def _elect(reg: Registration) -> tuple[Any, Future[Any] | None, bool]:
    """``(value, future, owner)``: the cached value, or the future to wait on / to complete."""
    with reg.lock:
        value = reg.value
        if value is not MISSING:
            return value, None, False
        pending = reg.pending
        if pending is not None:
            return MISSING, pending, False
        reg.pending = pending = Future()
        reg.owner = threading.get_ident()
        return MISSING, pending, True


def _publish(reg: Registration, future: Future[Any], generation: int, value: Any) -> None:
    with reg.lock:
        # an override or re-registration reset this singleton while it was being built
        if reg.generation == generation:
            reg.value = value
        reg.pending = None
    future.set_result(value)


def _fail(reg: Registration, future: Future[Any], exc: BaseException) -> None:
    with reg.lock:
        reg.pending = None
    future.set_exception(exc)


def create_sync(reg: Registration, build: Callable[[], Any]) -> Any:
    """Create (or wait for) the singleton of ``reg`` with ``build``, once."""
    stack = _check_cycle(reg)
    value, future, owner = _elect(reg)
    if future is None:
        return value
    if not owner:
        if reg.owner == threading.get_ident():
            raise ResolutionError(
                f"{reg.name} is being created by an async task on this thread; use `await aresolve(...)`",
                key=reg.name,
            )
        return future.result()
    generation = reg.generation
    token = _creating.set((*stack, reg))
    try:
        value = build()
    except BaseException as exc:
        _fail(reg, future, exc)
        raise
    finally:
        _creating.reset(token)
    _publish(reg, future, generation, value)
    return value


async def create_async(reg: Registration, build: Callable[[], Awaitable[Any]]) -> Any:
    """The async twin of :func:`create_sync`: waiters await the owner without blocking the loop."""
    stack = _check_cycle(reg)
    value, future, owner = _elect(reg)
    if future is None:
        return value
    if not owner:
        return await asyncio.wrap_future(future)
    generation = reg.generation
    token = _creating.set((*stack, reg))
    try:
        value = await build()
    except BaseException as exc:
        _fail(reg, future, exc)
        raise
    finally:
        _creating.reset(token)
    _publish(reg, future, generation, value)
    return value

"""Scopes (one per request or task) and running finalizers in reverse order of creation."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from buttress.di._errors import FinalizerError
from buttress.di._keys import make_key

if TYPE_CHECKING:
    from buttress.di._container import Container

T = TypeVar("T")
Finalizer = tuple[Generator[Any, None, None] | AsyncGenerator[Any, None], str]
"""A suspended generator provider and the name of what it provided."""


def run_finalizers(finalizers: list[Finalizer]) -> list[tuple[str, BaseException]]:
    """Run the sync finalizers, newest first; an async one is reported (it needs ``aclose``)."""
    errors: list[tuple[str, BaseException]] = []
    while finalizers:
        gen, name = finalizers.pop()
        if not isinstance(gen, Generator):
            errors.append((name, RuntimeError(f"{name} has an async finalizer; close with `await aclose()`")))
            continue
        try:
            next(gen)
        except StopIteration:
            continue
        except Exception as exc:
            errors.append((name, exc))
            continue
        gen.close()
        errors.append((name, RuntimeError(f"the generator provider of {name} yielded more than once")))
    return errors


async def arun_finalizers(finalizers: list[Finalizer]) -> list[tuple[str, BaseException]]:
    """Run every finalizer, sync and async, newest first, collecting their errors."""
    errors: list[tuple[str, BaseException]] = []
    while finalizers:
        gen, name = finalizers[-1]
        if isinstance(gen, Generator):
            errors += run_finalizers([finalizers.pop()])
            continue
        finalizers.pop()
        try:
            await gen.__anext__()
        except StopAsyncIteration:
            continue
        except Exception as exc:
            errors.append((name, exc))
            continue
        await gen.aclose()
        errors.append((name, RuntimeError(f"the generator provider of {name} yielded more than once")))
    return errors


class Scope:
    """One request's or task's scope: scoped instances live (and are finalized) with it.

    Singletons come from the container; transients are created per resolve (their finalizers,
    like those of scoped instances, run when the scope closes, newest first). A scope belongs to
    one thread or task at a time: it takes no lock.

    Example:
        >>> from buttress.di import Container
        >>> c = Container()
        >>> c.register(list, lifetime="scoped")
        >>> with c.scope() as scope:
        ...     assert scope.resolve(list) is scope.resolve(list)
    """

    __slots__ = ("_sync", "cache", "container", "finalizers")

    def __init__(self, container: Container) -> None:
        self.container = container
        self.cache: dict[Any, Any] = {}
        self.finalizers: list[Finalizer] = []
        self._sync: dict[Any, Callable[..., Any]] = container._scope_sync

    def resolve(self, tp: type[T], /, name: str | None = None) -> T:
        """Resolve ``tp`` (named ``name``) in this scope; see :meth:`Container.resolve`."""
        if name is None:
            return self._sync[tp](self)  # type: ignore[no-any-return]
        return self._sync[make_key(tp, name)](self)  # type: ignore[no-any-return]

    async def aresolve(self, tp: type[T], /, name: str | None = None) -> T:
        """Resolve ``tp`` in this scope, awaiting async providers; see :meth:`Container.aresolve`."""
        return await self.container._scope_async[tp if name is None else make_key(tp, name)](self)  # type: ignore[no-any-return]

    def resolve_all(self, tp: type[T], /, name: str | None = None) -> list[T]:
        """Every registration of ``tp``, in registration order; see :meth:`Container.resolve_all`."""
        return self.container._scope_sync_all[make_key(tp, name)](self)  # type: ignore[no-any-return]

    async def aresolve_all(self, tp: type[T], /, name: str | None = None) -> list[T]:
        """The async twin of :meth:`resolve_all`."""
        return await self.container._scope_async_all[make_key(tp, name)](self)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Run the scope's finalizers, newest first; forget its instances.

        Raises:
            FinalizerError: one or more finalizers raised (all of them still ran).
        """
        self.cache.clear()
        if self.finalizers:
            errors = run_finalizers(self.finalizers)
            if errors:
                raise FinalizerError(errors)

    async def aclose(self) -> None:
        """Run the scope's finalizers (sync and async), newest first; forget its instances.

        Raises:
            FinalizerError: one or more finalizers raised (all of them still ran).
        """
        self.cache.clear()
        errors = await arun_finalizers(self.finalizers)
        if errors:
            raise FinalizerError(errors)

    def __enter__(self) -> Scope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Scope:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

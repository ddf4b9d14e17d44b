"""Static checks, run by ``mypy --strict`` over tests/: resolve(T) is typed T. They run under pytest too."""

from __future__ import annotations

import asyncio
from typing import assert_type

import buttress.di
from buttress.di import Container, Override, Scope, StopResult


class Db:
    pass


def test_resolve_is_typed_by_its_argument() -> None:
    c = Container()
    c.register(Db)
    c.register(int, instance=3)
    assert_type(c.resolve(Db), Db)
    assert_type(c.resolve(int, "x") if False else c.resolve(int), int)
    assert_type(c.resolve_all(Db), list[Db])
    with c.scope() as scope:
        assert_type(scope, Scope)
        assert_type(scope.resolve(Db), Db)
        assert_type(scope.resolve_all(Db), list[Db])
    with c.override(Db, instance=Db()) as override:
        assert_type(override, Override)
    assert isinstance(c.resolve(Db), Db)

    async def main() -> None:
        assert_type(await c.aresolve(Db), Db)
        assert_type(await c.aresolve_all(Db), list[Db])
        async with c.ascope() as ascope:
            assert_type(await ascope.aresolve(Db), Db)
            assert_type(await ascope.aresolve_all(Db), list[Db])
        assert_type(await c.stop(), StopResult)

    asyncio.run(main())
    assert_type(c.stop_sync(), StopResult)


def test_public_surface_is_sorted_and_complete() -> None:
    exported = list(buttress.di.__all__)
    assert exported == sorted(exported)
    for name in exported:
        obj = getattr(buttress.di, name)
        if isinstance(obj, type):
            assert obj.__module__.startswith("buttress.di"), name
    assert "Container" in exported
    from buttress.errors import ButtressError

    for name in ("NotFoundError", "CycleError", "ValidationError", "StartError", "FinalizerError",
                 "AmbiguousError", "ScopeError", "CaptiveDependencyError", "AsyncProviderError",
                 "RegistrationError"):  # fmt: skip
        assert issubclass(getattr(buttress.di, name), ButtressError)

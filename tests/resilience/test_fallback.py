"""Fallback: values, functions (sync and async), chosen errors and results, events."""

from __future__ import annotations

import asyncio

import pytest

from buttress.errors import ConfigurationError, OpenCircuitError
from buttress.events import Event, FallbackUsed
from buttress.resilience import Failure, Fallback


def test_a_value_replaces_chosen_errors_only() -> None:
    events: list[Event] = []
    fallback = Fallback(value="cached", on=(ConnectionError, OpenCircuitError), name="fb")
    fallback.events.subscribe(events.append)
    error = ConnectionError("down")

    def down() -> str:
        raise error

    def bug() -> str:
        raise KeyError("bug")

    assert fallback.call(down) == "cached"
    assert fallback.call(lambda: "fresh") == "fresh"
    with pytest.raises(KeyError):
        fallback.call(bug)
    assert events == [FallbackUsed("fb", error, None)]
    assert repr(fallback) == "Fallback(value='cached', name='fb')"


def test_a_function_gets_the_failure_and_the_call() -> None:
    seen: list[Failure] = []

    def default(failure: Failure) -> str:
        seen.append(failure)
        return f"default for {failure.args[0]}"

    @Fallback(function=default)
    def lookup(key: str, *, fresh: bool = False) -> str:
        raise TimeoutError(key)

    assert lookup("user:1", fresh=True) == "default for user:1"
    (failure,) = seen
    assert isinstance(failure.error, TimeoutError) and failure.result is None
    assert failure.kwargs == {"fresh": True}


def test_rejected_results_are_replaced() -> None:
    events: list[Event] = []
    fallback = Fallback(value=[], when_result=lambda r: r is None)
    fallback.events.subscribe(events.append)
    assert fallback.call(lambda: None) == []
    assert fallback.call(lambda: [1]) == [1]
    assert events == [FallbackUsed("", None, None)]


def test_async_calls_with_sync_and_async_functions() -> None:
    async def down() -> str:
        raise ConnectionError("down")

    async def empty() -> str:
        return ""

    async def fresh() -> str:
        return "fresh"

    async def compute(failure: Failure) -> str:
        await asyncio.sleep(0)
        return "async default" if failure.error is not None else "was empty"

    async_fallback = Fallback(function=compute, when_result=lambda r: r == "")
    sync_fallback = Fallback(function=lambda failure: "sync default")
    awaitable_value = Fallback(value=asyncio.sleep)  # a value is returned as is, never awaited

    async def main() -> tuple[str, str, str, str, object]:
        return (
            await async_fallback.acall(down),
            await async_fallback.acall(empty),
            await async_fallback.acall(fresh),
            await sync_fallback.acall(down),
            await awaitable_value.acall(down),
        )

    assert asyncio.run(main()) == ("async default", "was empty", "fresh", "sync default", asyncio.sleep)
    with pytest.raises(TypeError, match="function is async"):
        async_fallback.call(lambda: "x")

    @async_fallback
    async def decorated() -> str:
        raise ConnectionError("down")

    assert asyncio.run(decorated()) == "async default"


def test_errors_from_the_fallback_function_propagate() -> None:
    def broken(failure: Failure) -> str:
        raise RuntimeError("fallback broke") from failure.error

    def down() -> str:
        raise ConnectionError("down")

    with pytest.raises(RuntimeError, match="fallback broke") as info:
        Fallback(function=broken).call(down)
    assert isinstance(info.value.__cause__, ConnectionError)


def test_validation_reports_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        Fallback(on="errors", when_result=3)  # type: ignore[arg-type]
    assert len(info.value.problems) == 3
    assert "give exactly one of value= and function=" in str(info.value)
    with pytest.raises(ConfigurationError):
        Fallback(value=1, function=lambda f: 2)
    with pytest.raises(ConfigurationError, match="function must be callable"):
        Fallback(function=42)  # type: ignore[arg-type]
    assert "function=" in repr(Fallback(function=print))
    assert Fallback(value=None).value is None

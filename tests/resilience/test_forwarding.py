"""Wrappers compiled with the wrapped function's own parameters pass every argument on as given."""

from __future__ import annotations

import asyncio
import functools
import inspect
import traceback
from typing import Any

import pytest

from buttress.resilience._forwarding import awaiting, specialise

_PASS = "_bt_calls.append(1)\nreturn _bt_fn({args})"
_APASS = "_bt_calls.append(1)\nreturn await _bt_fn({args})"


def _wrap(fn: Any) -> tuple[Any, list[int]]:
    calls: list[int] = []
    wrapper = specialise(fn, _PASS, {"_bt_fn": fn, "_bt_calls": calls}, is_async=False)
    assert wrapper is not None
    return wrapper, calls


def test_every_kind_of_parameter_is_forwarded_with_the_same_defaults() -> None:
    marker: list[int] = []

    def fn(
        a: int, b: int, /, c: int, d: list[int] = marker, *rest: int, e: int, f: int = 6, **kw: int
    ) -> Any:
        return a, b, c, d, rest, e, f, kw

    wrapper, calls = _wrap(fn)
    assert wrapper(1, 2, 3, e=5) == (1, 2, 3, marker, (), 5, 6, {})
    assert wrapper(1, 2, c=3, d=[4], e=5, z=9) == (1, 2, 3, [4], (), 5, 6, {"z": 9})
    assert wrapper(1, 2, 3, [4], 7, 8, e=5, f=0) == (1, 2, 3, [4], (7, 8), 5, 0, {})
    assert wrapper(1, 2, 3, e=5)[3] is marker  # the very default object, not a copy
    assert len(calls) == 4
    with pytest.raises(TypeError):
        wrapper(1, b=2, c=3, e=5)  # b is positional-only, as in fn
    with pytest.raises(TypeError):
        wrapper(1, 2, 3)  # e is required, as in fn
    ours = inspect.signature(wrapper)
    theirs = inspect.signature(fn)
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]


def test_positional_only_without_others_and_no_parameters() -> None:
    def only(a: int, /) -> int:
        return a

    def none() -> str:
        return "x"

    assert _wrap(only)[0](4) == 4
    assert _wrap(none)[0]() == "x"
    with pytest.raises(TypeError):
        _wrap(none)[0](1)


def test_a_wrapper_of_a_method_binds_like_the_method() -> None:
    class Service:
        def get(self, key: str) -> str:
            return f"{id(self)}:{key}"

    wrapper, _ = _wrap(Service.get)
    Service.get = wrapper  # type: ignore[method-assign]
    s = Service()
    assert s.get("k") == f"{id(s)}:k"


def test_async_wrappers_await_the_function() -> None:
    async def fn(a: int, *, b: int = 2) -> int:
        await asyncio.sleep(0)
        return a + b

    calls: list[int] = []
    wrapper = specialise(fn, _APASS, {"_bt_fn": fn, "_bt_calls": calls}, is_async=True)
    assert wrapper is not None and inspect.iscoroutinefunction(wrapper)
    assert asyncio.run(wrapper(1, b=5)) == 6 and calls == [1]


def test_reserved_names_and_unreadable_signatures_get_a_generic_wrapper() -> None:
    def clash(_bt_fn: int) -> int:
        return _bt_fn

    calls: list[int] = []
    wrapper = specialise(clash, _PASS, {"_bt_fn": clash, "_bt_calls": calls}, is_async=False)
    assert wrapper(5) == 5 and wrapper(_bt_fn=6) == 6
    # a builtin whose signature inspect cannot read
    with pytest.raises(ValueError, match="no signature"):
        inspect.signature(iter)
    it = specialise(iter, _PASS, {"_bt_fn": iter, "_bt_calls": calls}, is_async=False)
    assert list(it([1, 2])) == [1, 2] and len(calls) == 3

    # asked for: the arguments exactly as the caller wrote them
    def two(a: int, b: int = 2) -> tuple[int, int]:
        return a, b

    seen: list[Any] = []
    keyed = specialise(two, "_bt_seen.append(({pack_args}, {pack_kwargs}))\nreturn _bt_fn({args})",
                       {"_bt_fn": two, "_bt_seen": seen}, is_async=False, exact=False)  # fmt: skip
    assert keyed(1, b=3) == (1, 3) and seen == [((1,), {"b": 3})]


def test_a_functools_wraps_chain_is_forwarded_by_its_real_parameters() -> None:
    def inner(a: int) -> int:
        return a

    @functools.wraps(inner)
    def outer(*args: Any, **kwargs: Any) -> Any:
        return ("outer", args, kwargs)

    wrapper, _ = _wrap(outer)
    assert wrapper(1, x=2) == ("outer", (1,), {"x": 2})  # not narrowed to inner's (a)


def test_tracebacks_show_the_wrapper_source() -> None:
    def boom(a: int) -> int:
        raise ValueError(a)

    wrapper, _ = _wrap(boom)
    with pytest.raises(ValueError) as info:
        wrapper(3)
    text = "".join(traceback.format_exception(info.value))
    assert "<buttress wrapper" in text and "return _bt_fn(a)" in text


def test_packed_arguments_make_the_same_call_for_a_slow_path() -> None:
    def fn(a: int, /, b: int = 2, *rest: int, c: int, d: int = 4, **kw: int) -> Any:
        return a, b, rest, c, d, kw

    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append((args, kwargs))
        return fn(*args, **kwargs)

    body = "return _bt_slow({pack_args}, {pack_kwargs})"
    wrapper = specialise(fn, body, {"_bt_slow": slow}, is_async=False)
    assert wrapper is not None
    assert wrapper(1, c=3) == fn(1, c=3) == (1, 2, (), 3, 4, {})
    assert wrapper(1, 5, 6, 7, c=3, z=8) == fn(1, 5, 6, 7, c=3, z=8)
    assert seen[1] == ((1, 5, 6, 7), {"c": 3, "d": 4, "z": 8})

    def one(a: int) -> int:
        return a

    def none() -> int:
        return 0

    one_wrapper = specialise(
        one, body.replace("_bt_slow(", "_bt_pack("), {"_bt_pack": lambda a, k: (a, k)}, is_async=False
    )
    none_wrapper = specialise(
        none, body.replace("_bt_slow(", "_bt_pack("), {"_bt_pack": lambda a, k: (a, k)}, is_async=False
    )
    assert one_wrapper is not None and one_wrapper(1) == ((1,), {})
    assert none_wrapper is not None and none_wrapper() == ((), {})


class _Unsignable:
    """A callable whose signature cannot be read: the decorators fall back to *args/**kwargs."""

    @property
    def __signature__(self) -> Any:
        raise ValueError("no signature")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return args, kwargs


class _AsyncUnsignable(_Unsignable):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return args, kwargs


def _policies() -> list[Any]:
    from buttress.resilience import CircuitBreaker, Retry
    from buttress.resilience.backoff import Zero
    from buttress.resilience.ratelimit import MemoryLimiter, RateLimiter, TokenBucket

    return [
        CircuitBreaker("b"),
        Retry(attempts=2, backoff=Zero()),
        RateLimiter(MemoryLimiter(TokenBucket(rate=1, burst=5))),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["breaker", "retry", "ratelimit"])
def test_policies_fall_back_to_generic_wrappers_when_the_signature_is_unreadable(index: int) -> None:
    with pytest.raises(ValueError, match="no signature"):
        inspect.signature(_Unsignable())
    sync = _policies()[index](_Unsignable())
    assert sync(1, b=2) == ((1,), {"b": 2})
    coro = _policies()[index](_AsyncUnsignable())
    assert asyncio.run(coro(1, b=2)) == ((1,), {"b": 2})


def test_awaiting_turns_a_sync_body_into_its_async_twin() -> None:
    body = "x = _bt_fn({args})\nif not x:\n    return _bt_slow(_bt_fn, y._bt_fn(1))\nreturn my_bt_fn(x)"
    assert awaiting(body, "_bt_fn", "_bt_slow") == (
        "x = await _bt_fn({args})\nif not x:\n"
        "    return await _bt_slow(_bt_fn, y._bt_fn(1))\nreturn my_bt_fn(x)"
    )


def test_one_compiled_factory_serves_every_function_of_the_same_shape() -> None:
    from buttress.resilience import _forwarding

    def make(n: int) -> Any:
        def fn(a: int, b: int = n) -> int:
            return a + b

        return fn

    first, _ = _wrap(make(0))
    before = len(_forwarding._factories)
    wrappers = [_wrap(make(n))[0] for n in range(50)]  # decorating in a loop compiles nothing more
    assert len(_forwarding._factories) == before
    assert [w(1) for w in wrappers[:3]] == [1, 2, 3] and first(1) == 1  # each keeps its own defaults
    with pytest.raises(ValueError, match="must start with '_bt_'"):
        specialise(make(0), _PASS, {"fn": make(0)}, is_async=False)

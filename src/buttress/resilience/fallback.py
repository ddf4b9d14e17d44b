"""Fallback: replace a failed call's outcome with a value, or with what a function returns."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from buttress._validation import Problems
from buttress.events import FallbackUsed
from buttress.resilience._policy import AsyncLink, Policy, SyncLink, is_async_callable

__all__ = ["Failure", "Fallback"]

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]

_UNSET: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Failure:
    """What a fallback function is given: the failed call and how it failed.

    Attributes:
        error: the exception the call raised, or ``None`` when its result was rejected.
        result: the rejected result (``None`` when the call raised).
        args: the call's positional arguments.
        kwargs: the call's keyword arguments.
    """

    error: BaseException | None
    result: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Fallback(Policy):
    """Turn a failure into a default: a fixed ``value``, or what ``function(failure)`` returns.

    A call *fails* when it raises an exception selected by ``on`` (default: any
    :class:`Exception`) or returns a value for which ``when_result`` is true. Then the policy
    returns ``value``, or calls ``function`` with a :class:`Failure`; ``function`` may be an
    ``async def`` (awaited; async calls only). An exception outside ``on`` propagates unchanged,
    and so does an exception raised by ``function`` itself. Put the fallback outermost, so it
    sees the final outcome after retries, timeouts and the breaker.

    Args:
        value: what to return instead (give this or ``function``).
        function: computes the replacement from a :class:`Failure` (give this or ``value``).
        on: exception types that trigger the fallback.
        when_result: predicate over a result that triggers the fallback.
        name: identifies the policy in events.

    Raises:
        ConfigurationError: unless exactly one of ``value`` and ``function`` is given, or when
            ``on`` / ``function`` / ``when_result`` is not usable.

    Example:
        >>> from buttress.errors import OpenCircuitError
        >>> cached = Fallback(value=["cached", "list"], on=(OpenCircuitError, ConnectionError))
        >>> @cached
        ... def recommendations() -> list[str]:
        ...     raise ConnectionError("recommender down")
        >>> recommendations()
        ['cached', 'list']
    """

    __slots__ = ("_async_function", "function", "on", "value", "when_result")

    def __init__(
        self,
        *,
        value: Any = _UNSET,
        function: Callable[[Failure], Any] | None = None,
        on: ExceptionTypes = Exception,
        when_result: Callable[[Any], bool] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        p = Problems(f"Fallback {name!r}" if name else "Fallback")
        if (value is _UNSET) == (function is None):
            p.add("give exactly one of value= and function=")
        callbacks: tuple[tuple[str, object], ...] = (("function", function), ("when_result", when_result))
        for label, given in callbacks:
            if given is not None and not callable(given):
                p.add(f"{label} must be callable (got {given!r})")
        candidate: object = on
        if not (
            (isinstance(candidate, type) and issubclass(candidate, BaseException))
            or (isinstance(candidate, tuple) and all(isinstance(t, type) for t in candidate))
        ):
            p.add(f"on must be an exception type or a tuple of them (got {on!r})")
        p.raise_if_any()
        self.value = None if value is _UNSET else value
        self.function = function
        self.on = on
        self.when_result = when_result
        self._async_function = function is not None and is_async_callable(function)
        self._compose()

    def _replace(self, error: BaseException | None, result: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:  # fmt: skip
        if self.events.listeners:
            self.events.emit(FallbackUsed(self.name, error, result))
        function = self.function
        if function is None:
            return self.value
        return function(Failure(error, result, args, kwargs))

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        on = self.on
        check = self.when_result
        replace = self._replace
        if self._async_function:

            def refuse(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                raise TypeError("this Fallback's function is async; use it around async calls")

            return refuse

        def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                result = nxt(fn, args, kwargs)
            except on as error:
                return replace(error, None, args, kwargs)
            if check is not None and check(result):
                return replace(None, result, args, kwargs)
            return result

        return link

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        on = self.on
        check = self.when_result
        replace = self._replace
        computed = self.function is not None

        async def link(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                result = await nxt(fn, args, kwargs)
            except on as error:
                replaced = replace(error, None, args, kwargs)
            else:
                if check is None or not check(result):
                    return result
                replaced = replace(None, result, args, kwargs)
            return (await replaced) if computed and inspect.isawaitable(replaced) else replaced

        return link

    def __repr__(self) -> str:
        how = f"function={self.function!r}" if self.function is not None else f"value={self.value!r}"
        return f"Fallback({how}, name={self.name!r})"

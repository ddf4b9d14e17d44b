"""Wrappers with the wrapped function's own parameters, for the decorators' hottest paths.

A generic ``def wrapper(*args, **kwargs): ... fn(*args, **kwargs)`` builds a tuple and a dict
on every call and unpacks them again: about a quarter of what a rate-limit decorator costs on
an admitted call. :func:`specialise` compiles a wrapper whose parameter list *is* ``fn``'s
(names, kinds and the very same default objects) and which forwards them one by one, as
:mod:`dataclasses` and ``attrs`` generate their methods. Where the signature cannot be read, or
uses a name reserved for the wrapper's own variables, it returns ``None`` and the caller keeps its
generic wrapper.

The source is registered with :mod:`linecache`, so tracebacks through a wrapper show its lines.
"""

from __future__ import annotations

import inspect
import itertools
import linecache
from collections.abc import Callable
from typing import Any

__all__ = ["specialise"]

_RESERVED = "_bt_"
_counter = itertools.count()


def _forwarding(fn: Callable[..., Any]) -> tuple[str, str, dict[str, Any]] | None:
    """``fn``'s parameter list, the arguments that pass each parameter on, and its defaults."""
    try:
        # the callable's own signature, not the one a functools.wraps chain advertises
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    params: list[str] = []
    call: list[str] = []
    defaults: dict[str, Any] = {}
    star = False
    positional_only = False
    for p in sig.parameters.values():
        name = p.name
        if name.startswith(_RESERVED) or not name.isidentifier():
            return None
        if positional_only and p.kind is not p.POSITIONAL_ONLY:
            params.append("/")
            positional_only = False
        default = ""
        if p.default is not p.empty:
            slot = f"{_RESERVED}d{len(defaults)}"
            defaults[slot] = p.default
            default = f"={slot}"
        if p.kind is p.POSITIONAL_ONLY:
            positional_only = True
            params.append(name + default)
            call.append(name)
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            params.append(name + default)
            call.append(name)
        elif p.kind is p.VAR_POSITIONAL:
            star = True
            params.append(f"*{name}")
            call.append(f"*{name}")
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                star = True
                params.append("*")
            params.append(name + default)
            call.append(f"{name}={name}")
        else:  # VAR_KEYWORD
            params.append(f"**{name}")
            call.append(f"**{name}")
    if positional_only:
        params.append("/")
    return ", ".join(params), ", ".join(call), defaults


def specialise(
    fn: Callable[..., Any], body: str, env: dict[str, Any], *, is_async: bool
) -> Callable[..., Any] | None:
    """A wrapper of ``fn`` running ``body`` with ``fn``'s own parameters, or ``None``.

    ``body`` is the wrapper's body, not indented; ``{args}`` in it stands for the
    arguments that pass the wrapper's parameters on (``a, b, *rest, c=c, **kw``). The names of
    ``env`` (each starting with ``_bt_``) are closure variables of the wrapper.
    """
    found = _forwarding(fn)
    if found is None:
        return None
    params, call, defaults = found
    assert all(name.startswith(_RESERVED) for name in env), env
    names = [*env, *defaults]
    head = "async def" if is_async else "def"
    lines = body.replace("{args}", call)
    source = (
        f"def {_RESERVED}factory({', '.join(names)}):\n"
        f"  {head} wrapper({params}):\n"
        + "".join(f"    {line}\n" for line in lines.splitlines())
        + "  return wrapper\n"
    )
    filename = f"<buttress wrapper {next(_counter)} of {getattr(fn, '__qualname__', type(fn).__name__)}>"
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), {"__builtins__": __builtins__}, namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    factory: Callable[..., Callable[..., Any]] = namespace[f"{_RESERVED}factory"]
    return factory(*env.values(), *defaults.values())
